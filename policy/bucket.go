package policy

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"
)

// unitsPerToken is the fixed-point scale: one token is FillInterval in
// nanoseconds units, so TokensPerFill tokens per FillInterval is exactly
// TokensPerFill units per nanosecond.
func (b Bucket) unitsPerToken() uint64 { return uint64(b.FillInterval) }

// capacity is MaxTokens in units. Parse guarantees it fits in 63 bits.
func (b Bucket) capacity() uint64 { return b.MaxTokens * b.unitsPerToken() }

// Full returns the state of a full bucket at now (buckets start full).
func (b Bucket) Full(now int64) BucketState {
	return BucketState{Units: b.capacity(), Last: now}
}

// Take refills s up to now and takes one token if there is one.
//
// # Notes
//
// Refill is lazy and continuous: elapsed nanoseconds × TokensPerFill units,
// capped at MaxTokens. A clock that went backwards counts as no elapsed time
// (Last is kept, so that time is not counted twice later). A state holding
// more than MaxTokens (e.g. written under an older policy) is capped. A
// denied Take still returns the refilled state, which the caller may store.
func (b Bucket) Take(s BucketState, now int64) (BucketState, TakeResult) {
	capacity, unit, rate := b.capacity(), b.unitsPerToken(), b.TokensPerFill
	if unit == 0 || rate == 0 {
		// Not produced by Parse; refuse rather than divide by zero.
		return s, TakeResult{}
	}
	units := min(s.Units, capacity)
	if now > s.Last {
		// Compare in time before multiplying so elapsed × rate cannot overflow.
		if elapsed := uint64(now - s.Last); elapsed >= ceilDiv(capacity-units, rate) {
			units = capacity
		} else {
			units += elapsed * rate
		}
		s.Last = now
	}
	res := TakeResult{}
	if units >= unit {
		units -= unit
		res.Allowed = true
	}
	s.Units = units
	res.Remaining = units / unit
	if res.Remaining == 0 {
		res.RetryAfter = time.Duration(ceilDiv(unit-units, rate))
	}
	res.Reset = time.Duration(ceilDiv(capacity-units, rate))
	return s, res
}

// idle reports whether s has refilled to MaxTokens by now: such a bucket is
// the same as a new one, so its slot may be given to another key.
func (b Bucket) idle(s BucketState, now int64) bool {
	capacity, rate := b.capacity(), b.TokensPerFill
	if s.Units >= capacity {
		return true
	}
	return rate > 0 && now > s.Last && uint64(now-s.Last) >= ceilDiv(capacity-s.Units, rate)
}

// BucketKeyPrefix starts the shared-data key of every bucket slot of the
// rate limit of route: a slot's key is the prefix and the slot's index in
// decimal ("<plugin>/ratelimit/<route>/<slot>"). The plugin name comes
// first because all plugins of a proxy may share one shared-data namespace.
func BucketKeyPrefix(plugin, route string) string { return plugin + "/ratelimit/" + route + "/" }

// StoredTokens returns the whole tokens a bucket held when its state was
// stored as data (AppendBinary), without the refill since.
//
// # Errors
//
// As DecodeBucketState.
func (b Bucket) StoredTokens(data []byte) (uint64, error) {
	s, err := DecodeBucketState(data)
	if err != nil || b.unitsPerToken() == 0 {
		return 0, err
	}
	return s.Units / b.unitsPerToken(), nil
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// AppendBinary appends the BucketStateSize-byte encoding of s: Units, Last
// and Key, each a big-endian uint64.
func (s BucketState) AppendBinary(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, s.Units)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Last))
	return binary.BigEndian.AppendUint64(dst, uint64(s.Key))
}

// DecodeBucketState decodes what AppendBinary wrote.
//
// # Errors
//
// An input that is not exactly BucketStateSize bytes is refused.
func DecodeBucketState(b []byte) (BucketState, error) {
	if len(b) != BucketStateSize {
		return BucketState{}, errors.New("bucket state: want " + strconv.Itoa(BucketStateSize) + " bytes, got " + strconv.Itoa(len(b)))
	}
	return BucketState{
		Units: binary.BigEndian.Uint64(b),
		Last:  int64(binary.BigEndian.Uint64(b[8:])),
		Key:   LimitKey(binary.BigEndian.Uint64(b[16:])),
	}, nil
}
