package filter

import (
	"strconv"

	"github.com/wasmgate/wasmgate/policy"
)

// casRetries bounds the compare-and-swap loop on a contended bucket. Each
// retry means another worker took a token in between, so a handful suffices;
// after the last one the route's onContention decides.
const casRetries = 8

// createCAS is the cas of a write that creates a bucket (see takeToken).
const createCAS = 1 << 31

// eagerKeyLimit is the largest slot count whose shared-data keys are built
// once up front; larger tables build a key per request.
const eagerKeyLimit = 4096

// limitKeys names the shared-data keys of one rate limit's bucket slots:
// "<plugin>/ratelimit/<route>/<slot>". The plugin name comes first because
// all plugins of a proxy may share one shared-data namespace.
type limitKeys struct {
	prefix string
	keys   []string // every slot's key, when there are at most eagerKeyLimit
}

func newLimitKeys(plugin, route string, slots uint32) limitKeys {
	k := limitKeys{prefix: plugin + "/ratelimit/" + route + "/"}
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

// takeToken takes one token from a bucket kept in the host's shared data,
// where every worker VM of the proxy sees it. ok is false when the bucket
// could not be read or updated within casRetries.
//
// # Notes
//
// Shared data has no create-if-absent, but a set on a missing key succeeds
// whatever its cas while a set on an existing key must match its cas. A new
// bucket is therefore written with createCAS, a value no entry holds unless
// the host's CAS counter sits exactly on it: of workers racing to create one
// bucket, one wins and the others retry on the bucket it wrote.
func takeToken(b policy.Bucket, key string, now int64, scratch *[policy.BucketStateSize]byte) (res policy.TakeResult, ok bool) {
	for attempt := 0; attempt < casRetries; attempt++ {
		value, cas, err := getSharedData(key)
		var state policy.BucketState
		switch {
		case err == errNotFound:
			state, cas = b.Full(now), createCAS
		case err != nil:
			logDebug("wasmgate: reading rate-limit bucket " + key + ": " + err.Error())
			return res, false
		default:
			if state, err = policy.DecodeBucketState(value); err != nil {
				logDebug("wasmgate: resetting corrupt rate-limit bucket " + key + ": " + err.Error())
				state = b.Full(now)
			}
		}
		next, r := b.Take(state, now)
		err = setSharedData(key, next.AppendBinary(scratch[:0]), cas)
		if err == nil {
			return r, true
		}
		if err != errCasMismatch {
			logDebug("wasmgate: writing rate-limit bucket " + key + ": " + err.Error())
			return res, false
		}
	}
	return res, false
}
