package policy

import (
	"encoding/binary"
	"errors"
	"strconv"
	"time"
)

// The rate limit service's messages are encoded and decoded by hand, with
// the field numbers of envoy/service/ratelimit/v3/rls.proto and
// envoy/extensions/common/ratelimit/v3/ratelimit.proto: a reflection-based
// protobuf runtime would dominate the plugin's size (docs/RATIONALE.md).

// Wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireBytes  = 2
	wireI32    = 5
)

func appendTag(dst []byte, field, wire int) []byte {
	return binary.AppendUvarint(dst, uint64(field<<3|wire))
}

func appendStringField(dst []byte, field int, s string) []byte {
	dst = appendTag(dst, field, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendGrpcService encodes envoy.config.core.v3.GrpcService
// {envoy_grpc: {cluster_name: cluster}}.
func appendGrpcService(dst []byte, cluster string) []byte {
	inner := appendStringField(nil, 1, cluster) // EnvoyGrpc.cluster_name
	dst = appendTag(dst, 1, wireBytes)          // GrpcService.envoy_grpc
	dst = binary.AppendUvarint(dst, uint64(len(inner)))
	return append(dst, inner...)
}

// appendEntry encodes RateLimitDescriptor.entries (field 1) holding
// Entry{key, value}.
func appendEntry(dst []byte, key, value string) []byte {
	size := 2 + uvarintLen(len(key)) + len(key) + uvarintLen(len(value)) + len(value)
	dst = appendTag(dst, 1, wireBytes)
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = appendStringField(dst, 1, key)
	return appendStringField(dst, 2, value)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// AppendRequest appends the encoded RateLimitRequest of req to dst and
// returns it with the number of descriptors. With none, there is nothing
// to ask and the request is admitted without a call, as in Envoy.
//
// # Notes
//
// A descriptor is left out, as Envoy does, when one of its requestHeaders
// entries finds no header (nor an empty one) and has neither skipIfAbsent
// nor defaultValue. Constant entries are encoded once, at Parse; AppendRequest
// allocates nothing beyond dst's growth.
func (g *GlobalLimit) AppendRequest(dst []byte, req *Request) ([]byte, int) {
	dst = append(dst, g.domainField...)
	n := 0
	for i := range g.descriptors {
		d := &g.descriptors[i]
		start := len(dst)
		dst = append(dst, 2<<3|wireBytes, 0) // RateLimitRequest.descriptors, 1-byte length for now
		body := len(dst)
		complete := true
		for j := range d.entries {
			e := &d.entries[j]
			if e.encoded != nil {
				dst = append(dst, e.encoded...)
				continue
			}
			v, ok := e.resolve(req)
			if !ok || v == "" {
				if e.skipIfAbsent {
					continue
				}
				complete = false
				break
			}
			dst = appendEntry(dst, e.key, v)
		}
		if !complete || len(dst) == body {
			dst = dst[:start]
			continue
		}
		dst = putLength(dst, start+1, body)
		n++
	}
	return dst, n
}

// putLength writes the length of dst[body:] as the varint at dst[at], which
// has room for one byte, moving the body when the length needs more.
func putLength(dst []byte, at, body int) []byte {
	size := len(dst) - body
	if size < 0x80 {
		dst[at] = byte(size)
		return dst
	}
	extra := uvarintLen(size) - 1
	end := len(dst)
	for range extra {
		dst = append(dst, 0)
	}
	copy(dst[body+extra:], dst[body:end])
	binary.PutUvarint(dst[at:], uint64(size))
	return dst
}

// AnswerCode is the outcome of one call to the rate limit service.
type AnswerCode uint8

const (
	// AnswerOK: every descriptor is within its limit.
	AnswerOK AnswerCode = iota
	// AnswerOverLimit: a descriptor is over its limit.
	AnswerOverLimit
	// AnswerError: the call failed, or the answer was not OK or OVER_LIMIT.
	AnswerError
	// AnswerTimeout: no answer within the limit's timeout.
	AnswerTimeout
)

// Answer is a decoded RateLimitResponse. Reuse one value across calls.
type Answer struct {
	Code AnswerCode
	// Limit is the descriptor status the rate-limit fields report: the
	// over-limit one that resets last, or else the one with the fewest
	// requests remaining. HasLimit is false when the service sent none
	// with a current limit.
	Limit    LimitStatus
	HasLimit bool
	// ResponseHeaders and RequestHeaders are the headers the service asks
	// to add to the response (or the denial) and to the upstream request.
	ResponseHeaders, RequestHeaders [][2]string
}

// LimitStatus is one RateLimitResponse.DescriptorStatus.
type LimitStatus struct {
	// Name is current_limit.name ("" when unnamed).
	Name string
	// RequestsPerUnit and Window are the current limit: RequestsPerUnit
	// per Window (the unit times its multiplier).
	RequestsPerUnit uint32
	Window          time.Duration
	// Remaining is limit_remaining; Reset is duration_until_reset.
	Remaining uint32
	Reset     time.Duration
	over      bool
}

var (
	errTruncated = errors.New("rate limit answer: truncated or malformed")
	errUnknown   = errors.New("rate limit answer: overall code is neither OK nor OVER_LIMIT")
)

// Fail makes a the answer of a call that failed with code (AnswerError or
// AnswerTimeout), keeping its slices' storage.
func (a *Answer) Fail(code AnswerCode) {
	*a = Answer{Code: code, ResponseHeaders: a.ResponseHeaders[:0], RequestHeaders: a.RequestHeaders[:0]}
}

// Decode reads an encoded RateLimitResponse into a, which it resets first,
// keeping its slices' storage. Unknown fields are skipped. An answer whose
// overall code is neither OK nor OVER_LIMIT is an error, as in Envoy.
func (a *Answer) Decode(data []byte) error {
	*a = Answer{ResponseHeaders: a.ResponseHeaders[:0], RequestHeaders: a.RequestHeaders[:0]}
	code := uint64(0)
	err := eachField(data, func(field, wire int, v uint64, b []byte) error {
		var err error
		switch {
		case field == 1 && wire == wireVarint:
			code = v
		case field == 2 && wire == wireBytes:
			var s LimitStatus
			if s, err = decodeStatus(b); err == nil && s.RequestsPerUnit > 0 && (!a.HasLimit || s.reports(&a.Limit)) {
				a.Limit, a.HasLimit = s, true
			}
		case field == 3 && wire == wireBytes:
			a.ResponseHeaders, err = appendHeaderValue(a.ResponseHeaders, b)
		case field == 4 && wire == wireBytes:
			a.RequestHeaders, err = appendHeaderValue(a.RequestHeaders, b)
		}
		return err
	})
	if err != nil {
		a.Code = AnswerError
		return err
	}
	switch code {
	case 1:
		a.Code = AnswerOK
	case 2:
		a.Code = AnswerOverLimit
	default:
		a.Code = AnswerError
		return errUnknown
	}
	return nil
}

// reports says whether s is reported rather than the current choice c.
func (s *LimitStatus) reports(c *LimitStatus) bool {
	if s.over != c.over {
		return s.over
	}
	if s.over {
		return s.Reset > c.Reset
	}
	return s.Remaining < c.Remaining
}

func decodeStatus(data []byte) (LimitStatus, error) {
	var s LimitStatus
	err := eachField(data, func(field, wire int, v uint64, b []byte) error {
		switch {
		case field == 1 && wire == wireVarint:
			s.over = v == 2
		case field == 2 && wire == wireBytes:
			return decodeLimit(b, &s)
		case field == 3 && wire == wireVarint:
			s.Remaining = uint32(v)
		case field == 4 && wire == wireBytes:
			s.Reset = decodeDuration(b)
		}
		return nil
	})
	return s, err
}

// unitSeconds are the lengths of RateLimitResponse.RateLimit.Unit values
// (UNKNOWN, SECOND, MINUTE, HOUR, DAY, MONTH, YEAR, WEEK), as the service
// counts them.
var unitSeconds = [...]int64{0, 1, 60, 3600, 86400, 30 * 86400, 365 * 86400, 7 * 86400}

func decodeLimit(data []byte, s *LimitStatus) error {
	unit, multiplier := uint64(0), uint64(1)
	err := eachField(data, func(field, wire int, v uint64, b []byte) error {
		switch {
		case field == 1 && wire == wireVarint:
			s.RequestsPerUnit = uint32(v)
		case field == 2 && wire == wireVarint:
			unit = v
		case field == 3 && wire == wireBytes:
			s.Name = string(b)
		case field == 4 && wire == wireBytes: // google.protobuf.UInt32Value
			return eachField(b, func(field, wire int, v uint64, _ []byte) error {
				if field == 1 && wire == wireVarint && v > 0 {
					multiplier = v
				}
				return nil
			})
		}
		return nil
	})
	if unit < uint64(len(unitSeconds)) {
		s.Window = time.Duration(unitSeconds[unit]*int64(multiplier)) * time.Second
	}
	return err
}

// decodeDuration reads a google.protobuf.Duration; a malformed one is 0.
func decodeDuration(data []byte) time.Duration {
	var seconds, nanos int64
	_ = eachField(data, func(field, wire int, v uint64, _ []byte) error {
		switch {
		case field == 1 && wire == wireVarint:
			seconds = int64(v)
		case field == 2 && wire == wireVarint:
			nanos = int64(int32(v))
		}
		return nil
	})
	if seconds < 0 || seconds > int64(maxDurationSeconds) {
		return 0
	}
	return time.Duration(seconds)*time.Second + time.Duration(nanos)
}

const maxDurationSeconds = 1 << 32

// appendHeaderValue decodes an envoy.config.core.v3.HeaderValue (value, or
// raw_value when value is empty).
func appendHeaderValue(dst [][2]string, data []byte) ([][2]string, error) {
	var key, value, raw []byte
	err := eachField(data, func(field, wire int, _ uint64, b []byte) error {
		if wire == wireBytes {
			switch field {
			case 1:
				key = b
			case 2:
				value = b
			case 3:
				raw = b
			}
		}
		return nil
	})
	if len(value) == 0 {
		value = raw
	}
	if err != nil || len(key) == 0 || !isToken(string(key)) || unsafeValue(string(value)) {
		return dst, errTruncated
	}
	return append(dst, [2]string{lowerASCII(string(key)), string(value)}), nil
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// eachField calls fn for each field of an encoded message with its number,
// wire type, and varint value or length-delimited bytes.
func eachField(data []byte, fn func(field, wire int, v uint64, b []byte) error) error {
	for len(data) > 0 {
		tag, n := binary.Uvarint(data)
		if n <= 0 || tag>>3 == 0 {
			return errTruncated
		}
		data = data[n:]
		field, wire := int(tag>>3), int(tag&7)
		var v uint64
		var b []byte
		switch wire {
		case wireVarint:
			if v, n = binary.Uvarint(data); n <= 0 {
				return errTruncated
			}
			data = data[n:]
		case wireI64, wireI32:
			size := 8
			if wire == wireI32 {
				size = 4
			}
			if len(data) < size {
				return errTruncated
			}
			data = data[size:]
		case wireBytes:
			if v, n = binary.Uvarint(data); n <= 0 || v > uint64(len(data)-n) {
				return errTruncated
			}
			b = data[n : n+int(v)]
			data = data[n+int(v):]
		default:
			return errTruncated
		}
		if err := fn(field, wire, v, b); err != nil {
			return err
		}
	}
	return nil
}

// AppendFields appends the response header fields of a denial for answer
// a (AnswerOverLimit) to dst: retry-after and the RateLimit fields of
// g.Fields from the reported limit status, then the headers the service
// asked to add. Seconds are rounded up.
func (g *GlobalLimit) AppendFields(dst [][2]string, a *Answer) [][2]string {
	if a.HasLimit {
		l := &a.Limit
		name := l.Name
		if name == "" {
			name = g.Name
		}
		reset := ceilSeconds(l.Reset)
		dst = appendLimitFields(dst, g.Fields, true, limitFields{
			name: name, remaining: uint64(l.Remaining), next: reset, reset: reset,
			limit: strconv.FormatUint(uint64(l.RequestsPerUnit), 10), window: ceilSeconds(l.Window),
		})
	}
	return append(dst, a.ResponseHeaders...)
}
