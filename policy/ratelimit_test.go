package policy

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestRateLimit_AppendFields(t *testing.T) {
	denied := TakeResult{RetryAfter: 1200 * time.Millisecond, Reset: 10*time.Second + 1}
	allowed := TakeResult{Allowed: true, Remaining: 42, Reset: 5800 * time.Millisecond}
	soon := TakeResult{RetryAfter: time.Millisecond}
	tests := []struct {
		name  string
		limit string // extra rateLimit fields
		res   TakeResult
		want  [][2]string
	}{
		{name: "ietf denied", res: denied, want: [][2]string{
			{"retry-after", "2"},
			{"ratelimit", `"api";r=0;t=2`},
			{"ratelimit-policy", `"api";q=100;w=10`}}},
		{name: "retry-after at least 1", limit: `"fields": "none"`, res: soon, want: [][2]string{{"retry-after", "1"}}},
		{name: "allowed writes nothing by default", res: allowed, want: nil},
		{name: "ietf allowed", limit: `"fieldsOnAllowed": true`, res: allowed, want: [][2]string{
			{"ratelimit", `"api";r=42;t=0`},
			{"ratelimit-policy", `"api";q=100;w=10`}}},
		{name: "legacy denied", limit: `"fields": "legacy"`, res: denied, want: [][2]string{
			{"retry-after", "2"},
			{"x-ratelimit-limit", "100"},
			{"x-ratelimit-remaining", "0"},
			{"x-ratelimit-reset", "11"}}},
		{name: "both allowed", limit: `"fields": "both", "fieldsOnAllowed": true`, res: allowed, want: [][2]string{
			{"ratelimit", `"api";r=42;t=0`},
			{"ratelimit-policy", `"api";q=100;w=10`},
			{"x-ratelimit-limit", "100"},
			{"x-ratelimit-remaining", "42"},
			{"x-ratelimit-reset", "6"}}},
		{name: "none allowed", limit: `"fields": "none", "fieldsOnAllowed": true`, res: allowed, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.limit != "" {
				extra = ", " + tc.limit
			}
			p := mustParse(t, `{"routes": [{"name": "api", "rateLimit": {
			  "tokenBucket": {"maxTokens": 100, "tokensPerFill": 10, "fillInterval": "1s"}`+extra+`}}]}`)
			got := p.Routes()[0].RateLimit.AppendFields(nil, tc.res)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("AppendFields = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRateLimit_Defaults(t *testing.T) {
	p := mustParse(t, `{"routes": [
	  {"rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1m"}}},
	  {"rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1m"}, "key": {"clientAddress": true}}}]}`)
	want := RateLimit{
		Name:    "route-0",
		Bucket:  Bucket{MaxTokens: 5, TokensPerFill: 1, FillInterval: time.Minute},
		MaxKeys: 1, Status: 429, Fields: FieldsIETF, OnContention: ContentionAllow,
		policyField: `"route-0";q=5;w=300`, limitField: "5",
	}
	if got := *p.Routes()[0].RateLimit; got != want {
		t.Fatalf("RateLimit = %+v, want %+v", got, want)
	}
	if got := p.Routes()[1].RateLimit.MaxKeys; got != DefaultMaxKeys {
		t.Fatalf("keyed MaxKeys = %d, want %d", got, DefaultMaxKeys)
	}
}

func TestRateLimit_KeyOf(t *testing.T) {
	p := mustParse(t, `{"routes": [
	  {"match": [{"uri": {"prefix": "/none"}}], "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"}}},
	  {"match": [{"uri": {"prefix": "/hdr"}}], "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"},
	    "key": {"header": "X-Api-Key"}, "maxKeys": 16}},
	  {"match": [{"uri": {"prefix": "/addr"}}], "rateLimit": {"tokenBucket": {"maxTokens": 5, "fillInterval": "1s"},
	    "key": {"clientAddress": true}, "maxKeys": 1000}}]}`)
	keyOf := func(req *Request) LimitKey {
		var d Decision
		p.Choose(req, 0, &d)
		return d.LimitKey
	}
	if got := keyOf(&Request{Path: "/none", Headers: headerMap{"x-api-key": "k"}}); got != 0 {
		t.Fatalf("unkeyed LimitKey = %d, want 0", got)
	}
	hdr := p.Routes()[1].RateLimit
	homes := map[uint32]bool{}
	for i := range 200 {
		key := "key-" + strconv.Itoa(i)
		got := keyOf(&Request{Path: "/hdr", Headers: headerMap{"x-api-key": key}})
		if got != LimitKey(keyHash(key)) {
			t.Fatalf("LimitKey(%q) = %d, want keyHash %d", key, got, keyHash(key))
		}
		homes[hdr.probe(got, 0)] = true
	}
	if len(homes) != 16 {
		t.Fatalf("200 keys have %d of 16 home slots", len(homes))
	}
	if got, want := keyOf(&Request{Path: "/hdr"}), LimitKey(keyHash("")); got != want {
		t.Fatalf("LimitKey without key = %d, want the empty key's %d", got, want)
	}
	a := keyOf(&Request{Path: "/addr", ClientAddress: "192.0.2.1:1000"})
	b := keyOf(&Request{Path: "/addr", ClientAddress: "192.0.2.1:2000"})
	if a != b || a != LimitKey(keyHash("192.0.2.1")) {
		t.Fatalf("client address keys %d, %d; want both %d (port ignored)", a, b, keyHash("192.0.2.1"))
	}
}
