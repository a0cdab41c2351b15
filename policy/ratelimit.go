package policy

import (
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// Rate-limit defaults and bounds.
const (
	DefaultLimitStatus = 429
	// DefaultMaxKeys is the number of bucket slots of a keyed limit when
	// "maxKeys" is not set.
	DefaultMaxKeys = 1024
	maxMaxKeys     = 1_000_000
)

type limitKind uint8

const (
	limitNone limitKind = iota
	limitHeader
	limitClientAddress
)

// keySource says where a keyed limit takes its key from.
type keySource struct {
	kind limitKind
	name string // header name
}

// keyOf returns the identity of the request's key; a request without the
// key header counts as the empty key.
func (rl *RateLimit) keyOf(req *Request) LimitKey {
	var key string
	switch rl.key.kind {
	case limitNone:
		return 0
	case limitHeader:
		key, _ = header(req, rl.key.name)
	case limitClientAddress:
		key = clientAddress(req)
	}
	return LimitKey(keyHash(key))
}

// AppendFields appends the response header fields (lower-case name, value)
// that res calls for under rl.Fields.
//
// A denial always gets retry-after (whole seconds, rounded up, at least 1),
// plus the fields of rl.Fields. An admitted request gets the fields of
// rl.Fields (never retry-after) only when rl.FieldsOnAllowed is set.
//
// # Notes
//
// "ratelimit" is `"<name>";r=<remaining>;t=<seconds until the next token>`,
// "ratelimit-policy" is `"<name>";q=<maxTokens>;w=<seconds to refill an
// empty bucket>`, and the legacy x-ratelimit-reset is the seconds until the
// bucket is full again. All seconds are rounded up, so a client that waits
// them never comes back too early.
func (rl *RateLimit) AppendFields(dst [][2]string, res TakeResult) [][2]string {
	if res.Allowed && !rl.FieldsOnAllowed {
		return dst
	}
	if !res.Allowed {
		dst = append(dst, [2]string{"retry-after", strconv.FormatUint(max(ceilSeconds(res.RetryAfter), 1), 10)})
	}
	if rl.Fields == FieldsIETF || rl.Fields == FieldsBoth {
		dst = append(dst,
			[2]string{"ratelimit", strconv.Quote(rl.Name) + ";r=" + strconv.FormatUint(res.Remaining, 10) +
				";t=" + strconv.FormatUint(ceilSeconds(res.RetryAfter), 10)},
			[2]string{"ratelimit-policy", rl.policyField})
	}
	if rl.Fields == FieldsLegacy || rl.Fields == FieldsBoth {
		dst = append(dst,
			[2]string{"x-ratelimit-limit", rl.limitField},
			[2]string{"x-ratelimit-remaining", strconv.FormatUint(res.Remaining, 10)},
			[2]string{"x-ratelimit-reset", strconv.FormatUint(ceilSeconds(res.Reset), 10)})
	}
	return dst
}

func ceilSeconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return ceilDiv(uint64(d), uint64(time.Second))
}

func (p *parser) rateLimit(path string, v gjson.Result, routeName string) *RateLimit {
	fields, ok := p.object(path, v, schemaRateLimit)
	if !ok {
		return nil
	}
	before := len(p.errs)
	rl := &RateLimit{Name: routeName, MaxKeys: 1, Status: DefaultLimitStatus}
	if bv, ok := fields["tokenBucket"]; ok {
		rl.Bucket = p.tokenBucket(path+".tokenBucket", bv)
	} else {
		p.fail(path, `missing field "tokenBucket"`)
	}
	if kv, ok := fields["key"]; ok {
		rl.key = p.limitKey(path+".key", kv)
		rl.MaxKeys = DefaultMaxKeys
	}
	if mv, ok := fields["maxKeys"]; ok {
		if _, hasKey := fields["key"]; !hasKey {
			p.fail(path+".maxKeys", `requires "key"`)
		} else if n, ok := p.integer(path+".maxKeys", mv, 1, maxMaxKeys); ok {
			rl.MaxKeys = uint32(n)
		}
	}
	if sv, ok := fields["shadow"]; ok {
		rl.Shadow, _ = p.boolean(path+".shadow", sv)
	}
	p.denial(path, fields, &rl.Status, &rl.Body, &rl.Fields)
	if fv, ok := fields["fieldsOnAllowed"]; ok {
		rl.FieldsOnAllowed, _ = p.boolean(path+".fieldsOnAllowed", fv)
	}
	if cv, ok := fields["onContention"]; ok {
		rl.OnContention = ContentionPolicy(p.enum(path+".onContention", cv, contentionPolicies...))
	}
	if len(p.errs) != before {
		return nil
	}
	b := rl.Bucket
	refill := time.Duration(ceilDiv(b.capacity(), b.TokensPerFill)) // empty to full
	rl.policyField = strconv.Quote(rl.Name) + ";q=" + strconv.FormatUint(b.MaxTokens, 10) + ";w=" + strconv.FormatUint(ceilSeconds(refill), 10)
	rl.limitField = strconv.FormatUint(b.MaxTokens, 10)
	return rl
}

func (p *parser) tokenBucket(path string, v gjson.Result) Bucket {
	var b Bucket
	fields, ok := p.object(path, v, schemaTokenBucket)
	if !ok {
		return b
	}
	b.TokensPerFill = 1
	mv, hasMax := fields["maxTokens"]
	iv, hasInterval := fields["fillInterval"]
	if !hasMax || !hasInterval {
		p.fail(path, `missing field "maxTokens" or "fillInterval" (both are required)`)
		return b
	}
	b.MaxTokens, ok = p.integer(path+".maxTokens", mv, 1, math.MaxInt64)
	if tv, has := fields["tokensPerFill"]; has && ok {
		b.TokensPerFill, _ = p.integer(path+".tokensPerFill", tv, 1, b.MaxTokens)
	}
	if s, ok := p.str(path+".fillInterval", iv); ok {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			p.fail(path+".fillInterval", "%q is not a duration", s)
		case d <= 0:
			p.fail(path+".fillInterval", "must be positive, got %q", s)
		default:
			b.FillInterval = d
		}
	}
	if b.MaxTokens > 0 && b.FillInterval > 0 && b.MaxTokens > uint64(math.MaxInt64/b.FillInterval) {
		p.fail(path, "maxTokens × fillInterval must fit in 63 bits of nanoseconds: at most %d tokens with fillInterval %s",
			uint64(math.MaxInt64/b.FillInterval), b.FillInterval)
	}
	return b
}

func (p *parser) limitKey(path string, v gjson.Result) keySource {
	which, val, ok := p.oneOf(path, v, schemaLimitKey)
	if !ok {
		return keySource{}
	}
	if which == "header" {
		name, _ := p.headerField(path+".header", val)
		return keySource{kind: limitHeader, name: name}
	}
	p.requireTrue(path+".clientAddress", val)
	return keySource{kind: limitClientAddress}
}

// denial reads the options of a limit's denial: "status", "body" and
// "fields".
func (p *parser) denial(path string, fields map[string]gjson.Result, status *uint32, body *string, mode *FieldsMode) {
	if sv, ok := fields["status"]; ok {
		n, _ := p.integer(path+".status", sv, 400, 599)
		*status = uint32(n)
	}
	if bv, ok := fields["body"]; ok {
		*body, _ = p.str(path+".body", bv)
	}
	if fv, ok := fields["fields"]; ok {
		*mode = FieldsMode(p.enum(path+".fields", fv, fieldsModes...))
	}
}

// enum returns the position of v's string among values.
func (p *parser) enum(path string, v gjson.Result, values ...string) int {
	s, ok := p.str(path, v)
	if !ok {
		return 0
	}
	for i, want := range values {
		if s == want {
			return i
		}
	}
	p.fail(path, "%q is not one of %s", s, quoteList(values))
	return 0
}
