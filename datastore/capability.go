package datastore

// Unwrapper is a datastore that wraps another (FailFast, for one); As sees
// through it.
type Unwrapper interface {
	Unwrap() Interface
}

// As returns the first datastore in ds's chain of wrappers that has the
// capability T (an interface such as BatchCreator, or one a domain package
// defines, e.g. "gives its etcd client"), so callers test for what a backend
// can do instead of switching on concrete backend types.
func As[T any](ds Interface) (T, bool) {
	for ds != nil {
		if t, ok := ds.(T); ok {
			return t, true
		}
		u, ok := ds.(Unwrapper)
		if !ok {
			break
		}
		ds = u.Unwrap()
	}
	var zero T
	return zero, false
}
