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
		var claim, home loadedSlot // the slot to claim; the home slot, to share
		for i := range n {
			at := loadedSlot{slot: rl.probe(key, i)}
			value, version, found, err := store.Load(at.slot)
			if err != nil {
				return TakeResult{}, err
			}
			at.version, at.found, at.ok = version, found, true
			if !found {
				if !claim.ok {
					claim = at
				}
				break
			}
			if at.state, err = DecodeBucketState(value); err != nil {
				if !claim.ok {
					claim = at
				}
				continue
			}
			switch {
			case at.state.Key == key || !rl.Keyed():
				res, err := at.take(store, now, &rl.Bucket, scratch)
				if err == ErrConflict {
					continue attempts
				}
				return res, err
			case !claim.ok && rl.Bucket.idle(at.state, now):
				claim = at
			}
			if i == 0 {
				home = at
			}
		}
		target := claim
		if claim.ok {
			target.state = rl.Bucket.Full(now)
			target.state.Key = key
		} else {
			// Every probe holds another key's bucket that is in use.
			target = home
		}
		res, err := target.take(store, now, &rl.Bucket, scratch)
		if err == ErrConflict {
			continue
		}
		res.Shared = err == nil && !claim.ok
		return res, err
	}
	return TakeResult{}, ErrContended
}

// loadedSlot is a slot as Take read it.
type loadedSlot struct {
	ok      bool // the slot was read
	slot    uint32
	version uint32
	found   bool
	state   BucketState
}

// take takes a token from the slot's state and writes it back if the slot
// is unchanged; on error the result is zero.
func (l *loadedSlot) take(store BucketStore, now int64, b *Bucket, scratch *[BucketStateSize]byte) (TakeResult, error) {
	next, res := b.Take(l.state, now)
	if err := store.Store(l.slot, next.AppendBinary(scratch[:0]), l.version, l.found); err != nil {
		return TakeResult{}, err
	}
	return res, nil
}
