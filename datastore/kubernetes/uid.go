package kubernetes

import (
	"fmt"
	"math/bits"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/types"
)

// ConvertUID maps a v3 object's uid to the uid of the CR that stores it, and
// back: every byte of the UUID is bit-reversed except bytes 6 and 8, which
// hold the version and variant and are kept so the result is still a valid
// UUID. Applying it twice gives the input. An empty uid stays empty.
func ConvertUID(uid types.UID) (types.UID, error) {
	if uid == "" {
		return "", nil
	}
	in, err := uuid.Parse(string(uid))
	if err != nil {
		return "", fmt.Errorf("convert uid %q: %w", uid, err)
	}
	var out uuid.UUID
	for i, b := range in {
		out[i] = bits.Reverse8(b)
	}
	out[6], out[8] = in[6], in[8]
	return types.UID(out.String()), nil
}
