package ratelimitsvc

import (
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

const config = `domain: shop
descriptors:
  - key: generic_key
    value: checkout
    rate_limit: {name: per-route, unit: second, requests_per_unit: 3}
    descriptors:
      - key: user
        rate_limit: {name: per-user, unit: minute, requests_per_unit: 2}
      - key: user
        value: vip
        rate_limit: {unit: minute, requests_per_unit: 100, replaces: [{name: per-route}]}
  - key: generic_key
    value: shadow
    shadow_mode: true
    rate_limit: {unit: hour, requests_per_unit: 1}
  - key: generic_key
    value: free
    rate_limit: {unlimited: true}
`

func descriptor(kv ...string) *rlcommon.RateLimitDescriptor {
	d := &rlcommon.RateLimitDescriptor{}
	for i := 0; i < len(kv); i += 2 {
		d.Entries = append(d.Entries, &rlcommon.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

// TestService_ShouldRateLimit: nested descriptors, a value-less key for any
// value, the limit only at the request's depth, windows aligned to the unit,
// shadow_mode, unlimited and replaces, as envoyproxy/ratelimit answers them.
func TestService_ShouldRateLimit(t *testing.T) {
	base := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		at    []time.Duration // one request each
		desc  []*rlcommon.RateLimitDescriptor
		codes string // overall code per request: o ok, x over limit
	}{
		{"nested key, any value", []time.Duration{0, 1, 2, 3}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout", "user", "ann")}, "ooxx"},
		{"two descriptors, one count each", []time.Duration{0, 0, 0}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout", "user", "bob"), descriptor("generic_key", "checkout", "user", "cat")}, "oox"},
		{"window aligned to the minute", []time.Duration{58 * time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second, 62 * time.Second},
			[]*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout", "user", "dan")}, "oooox"},
		{"outer limit at its depth", []time.Duration{0, 0, 0, 0, time.Second}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout")}, "oooxo"},
		{"no limit deeper than configured", []time.Duration{0, 0, 0}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "free", "user", "x")}, "ooo"},
		{"unknown value", []time.Duration{0, 0}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "other")}, "oo"},
		{"shadow mode never denies", []time.Duration{0, 0, 0}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "shadow")}, "ooo"},
		{"unlimited", []time.Duration{0, 0, 0}, []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "free")}, "ooo"},
		{"replaces skips the named limit", []time.Duration{0, 0, 0, 0, 0},
			[]*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout", "user", "vip"), descriptor("generic_key", "checkout")}, "ooooo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(config))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, at := range tc.at {
				resp := s.ShouldRateLimit(&rlsv3.RateLimitRequest{Domain: "shop", Descriptors: tc.desc}, base.Add(at))
				got += map[rlsv3.RateLimitResponse_Code]string{rlsv3.RateLimitResponse_OK: "o", rlsv3.RateLimitResponse_OVER_LIMIT: "x"}[resp.OverallCode]
			}
			if got != tc.codes {
				t.Fatalf("codes %s, want %s", got, tc.codes)
			}
		})
	}
}

func TestService_ShouldRateLimit_Status(t *testing.T) {
	s, err := Parse([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 10, 0, 45, 0, time.UTC)
	req := &rlsv3.RateLimitRequest{Domain: "shop", Descriptors: []*rlcommon.RateLimitDescriptor{descriptor("generic_key", "checkout", "user", "eve")}}
	s.ShouldRateLimit(req, at)
	st := s.ShouldRateLimit(req, at).Statuses[0]
	if st.CurrentLimit.GetRequestsPerUnit() != 2 || st.CurrentLimit.GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE ||
		st.LimitRemaining != 0 || st.DurationUntilReset.AsDuration() != 15*time.Second {
		t.Fatalf("status %v", st)
	}
	st = s.ShouldRateLimit(req, at).Statuses[0]
	if st.Code != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("third hit: %v", st)
	}
}

func TestParse_Errors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no domain", "descriptors: []", "domain: must not be empty"},
		{"unknown key", "domain: d\ndescriptors: [{key: k, rate_limt: {}}]", "yaml: unmarshal errors:\n  line 2: field rate_limt not found in type ratelimitsvc.yamlDescriptor"},
		{"bad unit", "domain: d\ndescriptors: [{key: k, descriptors: [{key: j, rate_limit: {unit: fortnight, requests_per_unit: 1}}]}]",
			`descriptors[0].descriptors[0].rate_limit.unit: "fortnight" is not second, minute, hour, day, week, month or year`},
		{"wildcard", "domain: d\ndescriptors: [{key: k, value: a*}]", `descriptors[0].value: "a*": wildcard values are not emulated`},
		{"self replace", "domain: d\ndescriptors: [{key: k, rate_limit: {name: a, unit: second, requests_per_unit: 1, replaces: [{name: a}]}}]",
			"descriptors[0].rate_limit.replaces[0].name: must name another limit"},
		{"duplicate", "domain: d\ndescriptors: [{key: k, value: v}, {key: k, value: v}]", `descriptors[1]: duplicate descriptor "k_v"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
}
