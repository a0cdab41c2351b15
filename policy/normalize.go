package policy

import "strings"

// normalize makes what Decide matches, rewrites, limits and forwards the
// same for every spelling of a path, whatever the proxy normalized before
// the plugin (Istio's default normalizes dot segments but keeps "//"; see
// docs/RATIONALE.md, "Path spellings"). When req.Path is not in normal
// form (normalizePath) it appends the :path edit that forwards the normal
// form and returns a copy of req carrying it; otherwise it returns req.
func (plan *Plan) normalize(req *Request) *Request {
	if req == nil {
		return nil
	}
	full := normalizePath(req.Path)
	if full == req.Path {
		return req
	}
	plan.Request = append(plan.Request, Edit{Kind: HeaderSet, Name: ":path", Value: full})
	plan.RouteChanged = true
	normal := *req
	normal.Path = full
	return &normal
}

// normalizePath returns full (a :path, query included) with its path part
// as Envoy forwards it with normalize_path and merge_slashes on:
// percent-encoded unreserved characters decoded (%70 is p, %2e is .), runs
// of slashes merged, "." and ".." segments resolved (RFC 3986, section
// 5.2.4; ".." stops at the root). Encoded slashes and backslashes (%2F, %5C)
// stay encoded, as Istio's default keeps them, and the query is kept as
// is. A path that does not start with "/" (e.g. "*") is returned as is.
// Decoding repeats until nothing changes. full itself is returned, without
// allocating, when it is in normal form.
func normalizePath(full string) string {
	path, query, hasQuery := strings.Cut(full, "?")
	if !strings.HasPrefix(path, "/") || normalForm(path) {
		return full
	}
	// Until a fixed point: decoding "%%370" leaves "%70", which a backend
	// that decodes once more reads as "p".
	for !normalForm(path) {
		path = normalizeOnce(path)
	}
	if hasQuery {
		return path + "?" + query
	}
	return path
}

// normalizeOnce is one pass of normalizePath over a path without query.
func normalizeOnce(path string) string {
	decoded := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		if c, ok := unreservedEscape(path, i); ok {
			decoded = append(decoded, c)
			i += 2
			continue
		}
		decoded = append(decoded, path[i])
	}
	// Segments after the leading "/", with empty ones (merged slashes) and
	// dot segments resolved; trailing tells whether the path ends in "/".
	segments := make([]string, 0, 8)
	trailing := false
	for _, seg := range strings.Split(string(decoded[1:]), "/") {
		switch seg {
		case "", ".":
			trailing = true
		case "..":
			if len(segments) > 0 {
				segments = segments[:len(segments)-1]
			}
			trailing = true
		default:
			segments = append(segments, seg)
			trailing = false
		}
	}
	out := "/" + strings.Join(segments, "/")
	if trailing && len(segments) > 0 {
		out += "/"
	}
	return out
}

// normalForm reports whether path (starting with "/") has no percent-encoded
// unreserved character, no "//" and no "." or ".." segment.
func normalForm(path string) bool {
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			if _, ok := unreservedEscape(path, i); ok {
				return false
			}
		case '/':
			rest := path[i+1:]
			if strings.HasPrefix(rest, "/") || dotSegment(rest, ".") || dotSegment(rest, "..") {
				return false
			}
		}
	}
	return true
}

// dotSegment reports whether rest starts with the segment dot (followed by
// "/" or the end).
func dotSegment(rest, dot string) bool {
	return strings.HasPrefix(rest, dot) && (len(rest) == len(dot) || rest[len(dot)] == '/')
}

// unreservedEscape decodes the escape "%XX" at s[i] when it encodes an
// unreserved character (RFC 3986: ALPHA, DIGIT, "-", ".", "_", "~").
func unreservedEscape(s string, i int) (byte, bool) {
	if i+2 >= len(s) || s[i] != '%' {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	if !ok1 || !ok2 {
		return 0, false
	}
	c := hi<<4 | lo
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		return c, true
	}
	return 0, false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
