package policy

import "errors"

// KeyProbes is how many consecutive slots a keyed limit searches for the
// key's own bucket, or for a free one to claim.
const KeyProbes = 4

// BucketStore keeps the buckets of one rate limit, one encoded BucketState
// per slot, where every worker of the proxy sees them (the host's shared
// data, in the filter). Versions are the store's compare-and-swap tokens.
type BucketStore interface {
	// Load returns the encoded state of slot and its version; found is false
	// when the slot was never written.
	Load(slot uint32) (state []byte, version uint32, found bool, err error)
	// Store writes state to slot if the slot still holds version, or, when
	// found is false, if it is still unwritten. It returns ErrConflict when
	// another writer came first.
	Store(slot uint32, state []byte, version uint32, found bool) error
}

var (
	// ErrConflict is what BucketStore.Store returns when the slot changed
	// since it was loaded.
	ErrConflict = errors.New("bucket changed since it was read")
	// ErrContended is what RateLimit.Take returns when every attempt lost
	// to another writer.
	ErrContended = errors.New("bucket still contended after the last retry")
)

// LimitKey is the identity of a request's rate-limit key: a stable 64-bit
// hash. Every request of a limit without a key has LimitKey 0.
type LimitKey uint64

// Keyed reports whether the limit keeps one bucket per key (a "key" is
// configured) rather than one for the route.
func (rl *RateLimit) Keyed() bool { return rl.key.kind != limitNone }

// probes returns how many slots Take searches for key: KeyProbes, fewer when
// the table is smaller, and 1 for a limit without a key.
func (rl *RateLimit) probes() uint32 {
	if !rl.Keyed() {
		return 1
	}
	return min(KeyProbes, rl.MaxKeys)
}

// probe is the i-th slot Take searches for key (linear probing from the
// key's home slot).
func (rl *RateLimit) probe(key LimitKey, i uint32) uint32 {
	return uint32((uint64(key)%uint64(rl.MaxKeys) + uint64(i)) % uint64(rl.MaxKeys))
}

// Take takes one token for key from the limit's buckets in store at now,
// retrying up to retries times when another writer changes a bucket first.
// scratch holds the encoded state written.
//
// # Notes
//
// Every bucket records whose it is. Take looks for the key's own bucket in
// KeyProbes consecutive slots; if it has none, it claims the first slot that
// was never written, holds an idle bucket (refilled to maxTokens, so
// indistinguishable from a new one) or a corrupt state, and starts a full
// bucket there. So distinct keys never share a budget unless all KeyProbes
// slots from the key's home slot hold other keys' buckets still in use
// (not refilled); then the request takes from the bucket in its home slot
// (TakeResult.Shared), which is stricter, never looser, than its own.
//
// A slot once written is never emptied, so the search stops at the first
// unwritten slot: the key would have claimed it. Two workers that see a new
// key at the same moment claim the same slot, and compare-and-swap lets one
// of them win. Only if a bucket turns idle between their two searches may
// the key briefly hold two buckets; the one found first is used and the
// other turns idle again.
//
// A limit without a key has one bucket, in slot 0, whoever wrote it.
//
// # Errors
//
// A store error is returned as is, and ErrContended after the last retry.
func (rl *RateLimit) Take(store BucketStore, key LimitKey, now int64, retries int, scratch *[BucketStateSize]byte) (TakeResult, error) {
	n := rl.probes()
attempts:
	for range retries {
		var (
			claimed                 bool // a slot to claim was found
			claimSlot, claimVersion uint32
			claimFound              bool
			home                    BucketState // the home slot's bucket, to share
			homeVersion             uint32
		)
		for i := range n {
			slot := rl.probe(key, i)
			value, version, found, err := store.Load(slot)
			if err != nil {
				return TakeResult{}, err
			}
			if !found {
				if !claimed {
					claimed, claimSlot, claimVersion, claimFound = true, slot, 0, false
				}
				break
			}
			s, err := DecodeBucketState(value)
			switch {
			case err != nil:
				if !claimed {
					claimed, claimSlot, claimVersion, claimFound = true, slot, version, true
				}
				continue
			case s.Key == key || !rl.Keyed():
				next, res := rl.Bucket.Take(s, now)
				switch err := store.Store(slot, next.AppendBinary(scratch[:0]), version, true); err {
				case nil:
					return res, nil
				case ErrConflict:
					continue attempts
				default:
					return TakeResult{}, err
				}
			case !claimed && rl.Bucket.idle(s, now):
				claimed, claimSlot, claimVersion, claimFound = true, slot, version, true
			}
			if i == 0 {
				home, homeVersion = s, version
			}
		}
		var next BucketState
		var res TakeResult
		slot, version, found := claimSlot, claimVersion, claimFound
		if claimed {
			fresh := rl.Bucket.Full(now)
			fresh.Key = key
			next, res = rl.Bucket.Take(fresh, now)
		} else {
			// Every probe holds another key's bucket that is in use.
			slot, version, found = rl.probe(key, 0), homeVersion, true
			next, res = rl.Bucket.Take(home, now)
			res.Shared = true
		}
		switch err := store.Store(slot, next.AppendBinary(scratch[:0]), version, found); err {
		case nil:
			return res, nil
		case ErrConflict:
			continue
		default:
			return TakeResult{}, err
		}
	}
	return TakeResult{}, ErrContended
}
