package resources

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ClusterInformation is the projectcalico.org/v3 ClusterInformation resource,
// a singleton named "default" describing the cluster as a whole.
type ClusterInformation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClusterInformationSpec `json:"spec,omitempty"`
}

// ClusterInformationSpec is the spec of a ClusterInformation.
type ClusterInformationSpec struct {
	// ClusterGUID is a random identifier created once per cluster.
	ClusterGUID string `json:"clusterGUID,omitempty"`
	// ClusterType is a comma-separated list of markers such as "k8s,bgp,kdd".
	ClusterType string `json:"clusterType,omitempty"`
	// CalicoVersion is the version of Calico running in the cluster.
	CalicoVersion string `json:"calicoVersion,omitempty"`
	// DatastoreReady false tells components to pause (e.g. during upgrade).
	DatastoreReady *bool `json:"datastoreReady,omitempty"`
	// Variant is the product variant, e.g. "Calico".
	Variant string `json:"variant,omitempty"`
}

// Default does nothing: clusterType "kdd" is added only on the Kubernetes
// datastore, by that backend.
func (r *ClusterInformation) Default() {}

// Validate checks the metadata; the registry marks the kind singleton, so any
// name but "default" is rejected there.
func (r *ClusterInformation) Validate() error {
	var v Validator
	ValidateMeta(&v, r, nil)
	return v.Err()
}
