package filter

import "strings"

// headerView is a stream's request headers, read from the proxy with one
// host call and looked up by the policy as often as it likes.
//
// # Notes
//
// A header sent more than once reads as its values joined with ",", as
// Envoy's router matches it: a client cannot slip past a rule by sending a
// header twice. Cookie lines are joined with "; ", as Envoy joins HTTP/2
// cookie crumbs, so each line's cookies stay readable. FirstHeader reads
// the first value alone, for %REQ()% and rate limit descriptors.
type headerView struct {
	pairs  [][2]string
	loaded bool
}

// load reads the request headers; on error the view is empty.
func (v *headerView) load() {
	pairs, err := getHTTPRequestHeaders()
	if err != nil {
		logDebug("wasmgate: reading request headers: " + err.Error())
	}
	v.pairs, v.loaded = pairs, true
}

func (v *headerView) reset() { v.pairs, v.loaded = nil, false }

// Header implements policy.HeaderGetter. name is lower-case, as the proxy
// keeps header names.
func (v *headerView) Header(name string) (string, bool) {
	first := -1
	for i := range v.pairs {
		if v.pairs[i][0] != name {
			continue
		}
		if first >= 0 {
			return v.joined(name, first), true
		}
		first = i
	}
	if first < 0 {
		return "", false
	}
	return v.pairs[first][1], true
}

// FirstHeader implements policy.FirstHeaderGetter.
func (v *headerView) FirstHeader(name string) (string, bool) {
	for i := range v.pairs {
		if v.pairs[i][0] == name {
			return v.pairs[i][1], true
		}
	}
	return "", false
}

// joined returns every value of name from the first one on, joined with
// "," ("; " for cookie).
func (v *headerView) joined(name string, first int) string {
	sep := ","
	if name == "cookie" {
		sep = "; "
	}
	var b strings.Builder
	b.WriteString(v.pairs[first][1])
	for _, p := range v.pairs[first+1:] {
		if p[0] == name {
			b.WriteString(sep)
			b.WriteString(p[1])
		}
	}
	return b.String()
}

func (v *headerView) value(name string) string {
	s, _ := v.Header(name)
	return s
}
