package lint

import (
	"strings"
)

// covers reports whether every request b matches is matched by a, so that
// b, coming after a, never matches. It is conservative: false when unsure.
func covers(a, b *route) bool {
	if len(a.Match) == 0 {
		return true
	}
	if len(b.Match) == 0 {
		return false
	}
	for i := range b.Match {
		covered := false
		for j := range a.Match {
			if blockCovers(&a.Match[j], &b.Match[i]) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// blockCovers reports whether every request b matches also matches a: each
// of a's conditions is implied by one of b's.
func blockCovers(a, b *matchBlock) bool {
	return implied(a.URI, a.IgnoreURICase, b.URI, b.IgnoreURICase) &&
		implied(a.Method, false, b.Method, false) &&
		implied(a.Authority, true, b.Authority, true) &&
		namedImplied(a.Headers, b.Headers, true) &&
		namedImplied(a.QueryParams, b.QueryParams, false) &&
		withoutImplied(a.WithoutHeaders, b.WithoutHeaders)
}

func namedImplied(a, b map[string]stringMatch, foldNames bool) bool {
	for name, am := range a {
		bm, ok := lookup(b, name, foldNames)
		if !ok {
			return false
		}
		if !implied(&am, false, &bm, false) {
			return false
		}
	}
	return true
}

// withoutImplied: a's absences must be b's too, word for word.
func withoutImplied(a, b map[string]stringMatch) bool {
	for name, am := range a {
		bm, ok := lookup(b, name, true)
		if !ok || !same(am, bm) {
			return false
		}
	}
	return true
}

func lookup(m map[string]stringMatch, name string, fold bool) (stringMatch, bool) {
	for k, v := range m {
		if k == name || fold && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return stringMatch{}, false
}

func same(a, b stringMatch) bool {
	eq := func(x, y *string) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.Exact, b.Exact) && eq(a.Prefix, b.Prefix) && eq(a.PathPrefix, b.PathPrefix) && eq(a.Regex, b.Regex) && a.Present == b.Present
}

// implied reports whether a value matching b (case-insensitively when
// bFold) always matches a (case-insensitively when aFold). A nil a places no
// condition; a nil b allows any value.
func implied(a *stringMatch, aFold bool, b *stringMatch, bFold bool) bool {
	switch {
	case a == nil || a.Present:
		return a == nil || b != nil
	case b == nil:
		return false
	case bFold && !aFold:
		return false // b lets through case variants a refuses
	case a.Regex != nil:
		return b.Regex != nil && *a.Regex == *b.Regex && aFold == bFold
	case b.Regex != nil || b.Present:
		return false
	}
	norm := func(s string) string {
		if aFold {
			return strings.ToLower(s)
		}
		return s
	}
	// What every value b matches starts with (and, for exact, equals).
	var bValue string
	bExact := false
	switch {
	case b.Exact != nil:
		bValue, bExact = norm(*b.Exact), true
	case b.Prefix != nil:
		bValue = norm(*b.Prefix)
	case b.PathPrefix != nil:
		bValue = norm(strings.TrimRight(*b.PathPrefix, "/"))
	}
	switch {
	case a.Exact != nil:
		return bExact && bValue == norm(*a.Exact)
	case a.Prefix != nil:
		return strings.HasPrefix(bValue, norm(*a.Prefix))
	case a.PathPrefix != nil:
		seg := norm(strings.TrimRight(*a.PathPrefix, "/"))
		if seg == "" {
			return true
		}
		if b.Prefix != nil {
			return strings.HasPrefix(bValue, seg+"/")
		}
		return bValue == seg || strings.HasPrefix(bValue, seg+"/")
	}
	return false
}
