package policy

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// memStore is a BucketStore in memory with the host's compare-and-swap
// rules: a write must carry the version it read, and a create fails on a
// slot that exists.
type memStore struct {
	slots   map[uint32]memSlot
	version uint32
	loads   int
	// interfere, when set, runs once at the next Store before its version
	// check: another worker writing in between.
	interfere func()
	loadErr   error
	storeErr  error
}

type memSlot struct {
	state   []byte
	version uint32
}

func newMemStore() *memStore { return &memStore{slots: map[uint32]memSlot{}} }

func (m *memStore) Load(slot uint32) ([]byte, uint32, bool, error) {
	m.loads++
	if m.loadErr != nil {
		return nil, 0, false, m.loadErr
	}
	s, ok := m.slots[slot]
	return s.state, s.version, ok, nil
}

func (m *memStore) Store(slot uint32, state []byte, version uint32, found bool) error {
	if m.storeErr != nil {
		return m.storeErr
	}
	if f := m.interfere; f != nil {
		m.interfere = nil
		f()
	}
	cur, ok := m.slots[slot]
	if ok != found || ok && cur.version != version {
		return ErrConflict
	}
	m.version++
	m.slots[slot] = memSlot{state: append(cur.state[:0], state...), version: m.version}
	return nil
}

func (m *memStore) owner(t *testing.T, slot uint32) LimitKey {
	t.Helper()
	s, err := DecodeBucketState(m.slots[slot].state)
	if err != nil {
		t.Fatalf("slot %d: %v", slot, err)
	}
	return s.Key
}

// keyedLimit is a limit of maxTokens per hour keyed by x-api-key over
// maxKeys slots.
func keyedLimit(t *testing.T, maxTokens, maxKeys int) *RateLimit {
	t.Helper()
	p := mustParse(t, `{"routes": [{"match": [{"uri": {"prefix": "/"}}], "rateLimit": {
	  "tokenBucket": {"maxTokens": `+strconv.Itoa(maxTokens)+`, "fillInterval": "1h"},
	  "key": {"header": "x-api-key"}, "maxKeys": `+strconv.Itoa(maxKeys)+`}}]}`)
	return p.Routes()[0].RateLimit
}

const hour = int64(time.Hour)

// takeN takes n tokens for key at now and counts the admitted and shared.
func takeN(t *testing.T, rl *RateLimit, store BucketStore, key LimitKey, now int64, n int) (admitted, shared int) {
	t.Helper()
	var scratch [BucketStateSize]byte
	for range n {
		res, err := rl.Take(store, key, now, 8, &scratch)
		if err != nil {
			t.Fatalf("Take(key %d): %v", key, err)
		}
		if res.Allowed {
			admitted++
		}
		if res.Shared {
			shared++
		}
	}
	return admitted, shared
}

func TestRateLimit_Take_Unkeyed(t *testing.T) {
	p := mustParse(t, `{"routes": [{"match": [{"uri": {"prefix": "/"}}], "rateLimit": {
	  "tokenBucket": {"maxTokens": 3, "fillInterval": "1h"}}}]}`)
	rl, store := p.Routes()[0].RateLimit, newMemStore()
	if admitted, shared := takeN(t, rl, store, 0, 0, 5); admitted != 3 || shared != 0 {
		t.Fatalf("admitted %d (%d shared) of 5, want 3 (0 shared)", admitted, shared)
	}
	if len(store.slots) != 1 || store.owner(t, 0) != 0 {
		t.Fatalf("slots %v, want slot 0 only", store.slots)
	}
}

func TestRateLimit_Take_KeysDoNotShare(t *testing.T) {
	t.Run("same home slot", func(t *testing.T) {
		// Keys 0, 4, 8, 12 all start their search at slot 0 of 4.
		rl, store := keyedLimit(t, 2, 4), newMemStore()
		for i := range KeyProbes {
			key := LimitKey(4 * i)
			if admitted, shared := takeN(t, rl, store, key, 0, 3); admitted != 2 || shared != 0 {
				t.Fatalf("key %d: admitted %d (%d shared) of 3, want 2 (0 shared)", key, admitted, shared)
			}
			if got := store.owner(t, uint32(i)); got != key {
				t.Fatalf("slot %d holds key %d, want %d", i, got, key)
			}
		}
		// A fifth key finds every probe held by a drained bucket: it takes
		// from the home slot's, so it is denied, never given a new budget.
		if admitted, shared := takeN(t, rl, store, 16, 0, 2); admitted != 0 || shared != 2 {
			t.Fatalf("fifth key: admitted %d (%d shared) of 2, want 0 (2 shared)", admitted, shared)
		}
		if got := store.owner(t, 0); got != 0 {
			t.Fatalf("slot 0 now holds key %d, want key 0 still", got)
		}
	})
	t.Run("200 real keys in the default table", func(t *testing.T) {
		// With one slot per key, 200 keys over 1024 slots would put some
		// two in one bucket (the birthday bound: 1 - e^(-200·199/2048)).
		store := newMemStore()
		p := mustParse(t, `{"routes": [{"match": [{"uri": {"prefix": "/"}}], "rateLimit": {
		  "tokenBucket": {"maxTokens": 3, "fillInterval": "1h"}, "key": {"header": "x-api-key"}}}]}`)
		rl := p.Routes()[0].RateLimit
		homes := map[uint32]int{}
		for i := range 200 {
			var d Decision
			p.Choose(&Request{Path: "/", Headers: headerMap{"x-api-key": "customer-" + strconv.Itoa(i)}}, 0, &d)
			homes[rl.probe(d.LimitKey, 0)]++
			if admitted, shared := takeN(t, rl, store, d.LimitKey, 0, 4); admitted != 3 || shared != 0 {
				t.Fatalf("customer-%d: admitted %d (%d shared) of 4, want 3 (0 shared)", i, admitted, shared)
			}
		}
		if len(homes) == 200 {
			t.Fatal("no two of the 200 keys share a home slot: the test proves nothing")
		}
		if len(store.slots) != 200 {
			t.Fatalf("%d slots written, want one per key", len(store.slots))
		}
	})
}

func TestRateLimit_Take_ReclaimsIdleBuckets(t *testing.T) {
	rl, store := keyedLimit(t, 2, 1), newMemStore()
	const a, b = LimitKey(10), LimitKey(20)
	if admitted, _ := takeN(t, rl, store, a, 0, 1); admitted != 1 {
		t.Fatal("key a denied on a new bucket")
	}
	// b finds a's bucket in use: it shares it and gets a's last token.
	if admitted, shared := takeN(t, rl, store, b, 0, 2); admitted != 1 || shared != 2 {
		t.Fatalf("b beside a busy a: admitted %d (%d shared) of 2, want 1 (2 shared)", admitted, shared)
	}
	// Two hours later a's bucket has refilled: b claims the slot, full.
	if admitted, shared := takeN(t, rl, store, b, 2*hour, 3); admitted != 2 || shared != 0 {
		t.Fatalf("b after a went idle: admitted %d (%d shared) of 3, want 2 (0 shared)", admitted, shared)
	}
	if got := store.owner(t, 0); got != b {
		t.Fatalf("slot 0 holds key %d, want b", got)
	}
	if admitted, shared := takeN(t, rl, store, a, 2*hour, 1); admitted != 0 || shared != 1 {
		t.Fatalf("a beside a busy b: admitted %d (%d shared), want 0 (1 shared)", admitted, shared)
	}
}

func TestRateLimit_Take_OwnBucketBeforeIdleOne(t *testing.T) {
	// a lives at slot 0, b (same home) at slot 1. When a's bucket turns idle
	// b must keep using its own half-drained bucket, not claim a new one.
	rl, store := keyedLimit(t, 2, 4), newMemStore()
	const a, b = LimitKey(4), LimitKey(8)
	takeN(t, rl, store, a, 0, 1)
	takeN(t, rl, store, b, hour/2, 2) // a is not idle yet: b claims slot 1, empties it
	// At 1h30 a is full again, and b has refilled one token: a new bucket
	// would give it two.
	if admitted, _ := takeN(t, rl, store, b, hour+hour/2, 3); admitted != 1 {
		t.Fatalf("b at 1h30: admitted %d of 3, want 1", admitted)
	}
	if got := store.owner(t, 0); got != a {
		t.Fatalf("slot 0 holds key %d, want a (b must not claim it)", got)
	}
}

func TestRateLimit_Take_StopsAtUnwrittenSlot(t *testing.T) {
	rl, store := keyedLimit(t, 2, 64), newMemStore()
	takeN(t, rl, store, 3, 0, 1)
	store.loads = 0
	takeN(t, rl, store, 4, 0, 1)
	if store.loads != 1 {
		t.Fatalf("a new key in an empty neighbourhood loaded %d slots, want 1", store.loads)
	}
	store.loads = 0
	takeN(t, rl, store, 3, 0, 1)
	if store.loads != 1 {
		t.Fatalf("a key in its home slot loaded %d slots, want 1", store.loads)
	}
}

func TestRateLimit_Take_CorruptSlotIsClaimed(t *testing.T) {
	rl, store := keyedLimit(t, 2, 4), newMemStore()
	store.slots[1] = memSlot{state: make([]byte, 16), version: 7} // a state of the wrong size
	if admitted, shared := takeN(t, rl, store, 1, 0, 3); admitted != 2 || shared != 0 {
		t.Fatalf("admitted %d (%d shared) of 3, want 2 (0 shared)", admitted, shared)
	}
	if got := store.owner(t, 1); got != 1 {
		t.Fatalf("slot 1 holds key %d, want 1", got)
	}
}

func TestRateLimit_Take_Contention(t *testing.T) {
	var scratch [BucketStateSize]byte
	t.Run("another worker wins, then the retry sees its write", func(t *testing.T) {
		for _, existing := range []bool{false, true} {
			rl, store := keyedLimit(t, 3, 4), newMemStore()
			if existing {
				takeN(t, rl, store, 5, 0, 1)
			}
			store.interfere = func() {
				if res, err := rl.Take(store, 5, 0, 8, &scratch); err != nil || !res.Allowed {
					t.Fatalf("the other worker's Take = %+v, %v", res, err)
				}
			}
			res, err := rl.Take(store, 5, 0, 8, &scratch)
			if err != nil || !res.Allowed {
				t.Fatalf("existing %v: Take = %+v, %v", existing, res, err)
			}
			want := uint64(1)
			if existing {
				want = 0
			}
			if res.Remaining != want {
				t.Fatalf("existing %v: remaining %d, want %d: a write was lost", existing, res.Remaining, want)
			}
		}
	})
	t.Run("every attempt conflicts", func(t *testing.T) {
		rl := keyedLimit(t, 3, 4)
		_, err := rl.Take(conflictStore{newMemStore()}, 5, 0, 8, &scratch)
		if err != ErrContended {
			t.Fatalf("err = %v, want ErrContended", err)
		}
	})
	t.Run("store errors", func(t *testing.T) {
		rl := keyedLimit(t, 3, 4)
		boom := errors.New("boom")
		store := newMemStore()
		store.loadErr = boom
		if _, err := rl.Take(store, 5, 0, 8, &scratch); err != boom {
			t.Fatalf("load error: err = %v, want boom", err)
		}
		store.loadErr, store.storeErr = nil, boom
		if _, err := rl.Take(store, 5, 0, 8, &scratch); err != boom {
			t.Fatalf("store error: err = %v, want boom", err)
		}
	})
}

// conflictStore loses every write to another writer.
type conflictStore struct{ *memStore }

func (conflictStore) Store(uint32, []byte, uint32, bool) error { return ErrConflict }

func TestRateLimit_Take_Allocs(t *testing.T) {
	rl, store := keyedLimit(t, 1_000_000, 64), newMemStore()
	var scratch [BucketStateSize]byte
	var i int64
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		if _, err := rl.Take(store, LimitKey(i%16), i, 8, &scratch); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Take allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkRateLimit_Take(b *testing.B) {
	p, err := Parse([]byte(`{"routes": [{"match": [{"uri": {"prefix": "/"}}], "rateLimit": {
	  "tokenBucket": {"maxTokens": 1000000000, "fillInterval": "1s"}, "key": {"header": "x-api-key"}}}]}`))
	if err != nil {
		b.Fatal(err)
	}
	rl, store := p.Routes()[0].RateLimit, newMemStore()
	var scratch [BucketStateSize]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := rl.Take(store, LimitKey(i%64), int64(i), 8, &scratch); err != nil {
			b.Fatal(err)
		}
	}
}
