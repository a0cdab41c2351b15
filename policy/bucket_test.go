package policy

import (
	"math"
	"testing"
	"time"
)

const t0 = int64(1_700_000_000_000_000_000) // an arbitrary Unix time in ns

func TestBucket_Full(t *testing.T) {
	b := Bucket{MaxTokens: 5, TokensPerFill: 1, FillInterval: time.Second}
	s := b.Full(t0)
	if s.Units != 5*uint64(time.Second) || s.Last != t0 {
		t.Fatalf("Full = %+v", s)
	}
}

// takeAll takes until the first denial and returns how many were allowed.
func takeAll(b Bucket, s *BucketState, now int64) int {
	n := 0
	for {
		var res TakeResult
		*s, res = b.Take(*s, now)
		if !res.Allowed {
			return n
		}
		n++
	}
}

func TestBucket_Take(t *testing.T) {
	b := Bucket{MaxTokens: 100, TokensPerFill: 10, FillInterval: time.Second}
	s := b.Full(t0)
	if n := takeAll(b, &s, t0); n != 100 {
		t.Fatalf("burst = %d, want 100", n)
	}
	// Exactly tokensPerFill per fillInterval, at any step size.
	for i := int64(1); i <= 5; i++ {
		if n := takeAll(b, &s, t0+i*int64(time.Second)); n != 10 {
			t.Fatalf("interval %d: %d allowed, want 10", i, n)
		}
	}
	now := t0 + 5*int64(time.Second)
	for step := range 10 {
		now += int64(100 * time.Millisecond)
		if n := takeAll(b, &s, now); n != 1 {
			t.Fatalf("step %d of 100ms: %d allowed, want 1", step, n)
		}
	}
	// Never above maxTokens, however long the wait.
	if n := takeAll(b, &s, now+int64(time.Hour)); n != 100 {
		t.Fatalf("after an hour = %d, want 100", n)
	}
}

func TestBucket_Take_Result(t *testing.T) {
	b := Bucket{MaxTokens: 3, TokensPerFill: 2, FillInterval: 3 * time.Second}
	tests := []struct {
		name string
		s    BucketState
		now  int64
		want TakeResult
	}{
		{name: "full", s: b.Full(t0), now: t0,
			want: TakeResult{Allowed: true, Remaining: 2, Reset: 1500 * time.Millisecond}},
		{name: "last token", s: BucketState{Units: uint64(3 * time.Second), Last: t0}, now: t0,
			want: TakeResult{Allowed: true, RetryAfter: 1500 * time.Millisecond, Reset: 4500 * time.Millisecond}},
		{name: "empty", s: BucketState{Last: t0}, now: t0,
			want: TakeResult{RetryAfter: 1500 * time.Millisecond, Reset: 4500 * time.Millisecond}},
		{name: "partial token rounds wait up", s: BucketState{Units: 1, Last: t0}, now: t0,
			want: TakeResult{RetryAfter: 1500 * time.Millisecond, Reset: 4500 * time.Millisecond}},
		{name: "one ns short of a token", s: BucketState{Last: t0}, now: t0 + int64(1500*time.Millisecond) - 1,
			want: TakeResult{RetryAfter: 1, Reset: 3000*time.Millisecond + 1}},
		{name: "clock backwards is no elapsed time", s: BucketState{Last: t0}, now: t0 - int64(time.Hour),
			want: TakeResult{RetryAfter: 1500 * time.Millisecond, Reset: 4500 * time.Millisecond}},
		{name: "over-full state is capped", s: BucketState{Units: math.MaxUint64, Last: t0}, now: t0,
			want: TakeResult{Allowed: true, Remaining: 2, Reset: 1500 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got := b.Take(tc.s, tc.now)
			if got != tc.want {
				t.Fatalf("Take = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBucket_Take_ClockBackwardsKeepsLast(t *testing.T) {
	b := Bucket{MaxTokens: 1, TokensPerFill: 1, FillInterval: time.Second}
	s, _ := b.Take(b.Full(t0), t0)
	s, res := b.Take(s, t0-int64(time.Minute))
	if res.Allowed || s.Last != t0 {
		t.Fatalf("backwards Take: allowed %v, Last %d; want denied, Last %d", res.Allowed, s.Last, t0)
	}
	if _, res = b.Take(s, t0+int64(time.Second)); !res.Allowed {
		t.Fatal("one interval after the last real refill: denied, want allowed")
	}
}

// TestBucket_Take_RetryAfterIsHonest checks that waiting exactly RetryAfter
// always yields a token and waiting 1ns less never does.
func TestBucket_Take_RetryAfterIsHonest(t *testing.T) {
	b := Bucket{MaxTokens: 7, TokensPerFill: 3, FillInterval: 700 * time.Millisecond}
	s := b.Full(t0)
	now := t0
	for i := range 200 {
		var res TakeResult
		s, res = b.Take(s, now)
		if res.Allowed && res.Remaining > 0 {
			continue
		}
		wait := int64(res.RetryAfter)
		if res.Allowed && wait == 0 {
			t.Fatalf("take %d: no token left but RetryAfter 0", i)
		}
		if _, early := b.Take(s, now+wait-1); early.Allowed {
			t.Fatalf("take %d: allowed 1ns before RetryAfter %v", i, res.RetryAfter)
		}
		if _, onTime := b.Take(s, now+wait); !onTime.Allowed {
			t.Fatalf("take %d: denied after RetryAfter %v", i, res.RetryAfter)
		}
		now += wait
	}
}

func TestBucketState_AppendBinary(t *testing.T) {
	s := BucketState{Units: 0x0102030405060708, Last: -2, Key: 0x1112131415161718}
	enc := s.AppendBinary([]byte("k"))
	want := []byte("k\x01\x02\x03\x04\x05\x06\x07\x08\xff\xff\xff\xff\xff\xff\xff\xfe\x11\x12\x13\x14\x15\x16\x17\x18")
	if string(enc) != string(want) {
		t.Fatalf("AppendBinary = %x, want %x", enc, want)
	}
	got, err := DecodeBucketState(enc[1:])
	if err != nil || got != s {
		t.Fatalf("DecodeBucketState = %+v, %v; want %+v", got, err, s)
	}
}

func TestDecodeBucketState_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "empty", in: nil, want: "bucket state: want 24 bytes, got 0"},
		{name: "before keys were stored", in: make([]byte, 16), want: "bucket state: want 24 bytes, got 16"},
		{name: "short", in: make([]byte, 23), want: "bucket state: want 24 bytes, got 23"},
		{name: "long", in: make([]byte, 25), want: "bucket state: want 24 bytes, got 25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBucketState(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBucket_StoredTokens(t *testing.T) {
	b := Bucket{MaxTokens: 10, TokensPerFill: 1, FillInterval: time.Second}
	tests := []struct {
		name  string
		units uint64
		want  uint64
	}{
		{name: "full", units: b.capacity(), want: 10},
		{name: "a token and a half", units: uint64(3 * time.Second / 2), want: 1},
		{name: "empty", units: 0, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := BucketState{Units: tc.units, Last: 5}.AppendBinary(nil)
			got, err := b.StoredTokens(data)
			if err != nil || got != tc.want {
				t.Fatalf("StoredTokens = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
	if _, err := b.StoredTokens([]byte{1, 2}); err == nil {
		t.Fatal("StoredTokens accepts 2 bytes")
	}
}

func TestBucketKeyPrefix(t *testing.T) {
	if got, want := BucketKeyPrefix("gw", "api"), "gw/ratelimit/api/"; got != want {
		t.Fatalf("BucketKeyPrefix = %q, want %q", got, want)
	}
}
