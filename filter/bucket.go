package filter

import (
	"strconv"

	"github.com/wasmgate/wasmgate/policy"
)

// createCAS is the cas of a write that creates a bucket (see sharedBuckets).
const createCAS = 1 << 31

// eagerKeyLimit is the largest slot count whose shared-data keys are built
// once up front; larger tables build a key per request.
const eagerKeyLimit = 4096

// limitKeys names the shared-data keys of one rate limit's bucket slots
// (see policy.BucketKeyPrefix).
type limitKeys struct {
	prefix string
	keys   []string // every slot's key, when there are at most eagerKeyLimit
}

func newLimitKeys(plugin, route string, slots uint32) limitKeys {
	k := limitKeys{prefix: policy.BucketKeyPrefix(plugin, route)}
	if slots <= eagerKeyLimit {
		k.keys = make([]string, slots)
		for i := range k.keys {
			k.keys[i] = k.prefix + strconv.Itoa(i)
		}
	}
	return k
}

func (k *limitKeys) key(slot uint32) string {
	if int(slot) < len(k.keys) {
		return k.keys[slot]
	}
	return k.prefix + strconv.FormatUint(uint64(slot), 10)
}

// sharedBuckets is a policy.BucketStore over the host's shared data, where
// every worker VM of the proxy sees the same buckets.
//
// # Notes
//
// Shared data has no create-if-absent, but a set on a missing key succeeds
// whatever its cas while a set on an existing key must match its cas. A new
// bucket is therefore written with createCAS, a value no entry holds unless
// the host's CAS counter sits exactly on it: of workers racing to create one
// bucket, one wins and the others retry on the bucket it wrote.
type sharedBuckets struct {
	keys *limitKeys
}

func (s *sharedBuckets) Load(slot uint32) ([]byte, uint32, bool, error) {
	value, cas, err := readSharedData(s.keys.key(slot))
	switch err {
	case nil:
		return value, cas, true, nil
	case errNotFound:
		return nil, 0, false, nil
	default:
		return nil, 0, false, err
	}
}

func (s *sharedBuckets) Store(slot uint32, state []byte, version uint32, found bool) error {
	if !found {
		version = createCAS
	}
	switch err := setSharedData(s.keys.key(slot), state, version); err {
	case errCasMismatch:
		return policy.ErrConflict
	default:
		return err
	}
}
