package policy

import "sort"

// routeIndex narrows the routes a request can match by its path, so that a
// policy of many prefix or exact routes costs a few map lookups per request
// instead of a scan of every route. It only ever narrows: each candidate is
// still checked with Route.match, and the lowest-numbered route that
// matches wins, as in a scan of the list.
type routeIndex struct {
	// exact holds, by path, the routes with a block matching that path
	// exactly (case-sensitively).
	exact map[string][]int32
	// prefixes holds, by prefix, the routes with a block matching by that
	// (case-sensitive) prefix or path prefix.
	prefixes map[string][]int32
	// lengths are the lengths of the keys of prefixes, ascending.
	lengths []int
	// always are the routes with a block the index cannot narrow by path
	// (no uri condition, a regex, ignoreUriCase): candidates for every
	// request.
	always []int32
}

// indexMinRoutes is the size from which a policy gets a route index; below
// it a scan is as fast.
const indexMinRoutes = 16

// newRouteIndex indexes routes, or returns nil when a scan is as fast.
// Each list of route numbers is ascending.
func newRouteIndex(routes []*Route) *routeIndex {
	if len(routes) < indexMinRoutes {
		return nil
	}
	x := &routeIndex{exact: map[string][]int32{}, prefixes: map[string][]int32{}}
	for i, r := range routes {
		n := int32(i)
		if len(r.matches) == 0 {
			x.always = append(x.always, n)
			continue
		}
		for _, b := range r.matches {
			u := b.uri
			switch {
			case u == nil || u.fold || u.kind != matchExact && u.kind != matchPrefix && u.kind != matchPathPrefix:
				x.always = appendOnce(x.always, n)
			case u.kind == matchExact:
				x.exact[u.value] = appendOnce(x.exact[u.value], n)
			default:
				x.prefixes[u.value] = appendOnce(x.prefixes[u.value], n)
			}
		}
	}
	seen := map[int]bool{}
	for p := range x.prefixes {
		if !seen[len(p)] {
			seen[len(p)] = true
			x.lengths = append(x.lengths, len(p))
		}
	}
	sort.Ints(x.lengths)
	return x
}

// appendOnce appends n unless it is already the last element (routes are
// added in order, so a route's second block would repeat it there).
func appendOnce(list []int32, n int32) []int32 {
	if len(list) > 0 && list[len(list)-1] == n {
		return list
	}
	return append(list, n)
}

// firstMatch returns the first route that matches the request and the
// length of the uri prefix it matched (see Route.match), or nil.
func (p *Policy) firstMatch(req *Request, path, query string) (*Route, int) {
	if p.index == nil {
		return scanRoutes(p.routes, req, path, query)
	}
	return p.index.firstMatch(p.routes, req, path, query)
}

// scanRoutes tries the routes in order.
func scanRoutes(routes []*Route, req *Request, path, query string) (*Route, int) {
	for _, r := range routes {
		if prefix, ok := r.match(req, path, query); ok {
			return r, prefix
		}
	}
	return nil, -1
}

func (x *routeIndex) firstMatch(routes []*Route, req *Request, path, query string) (*Route, int) {
	s := search{routes: routes, req: req, path: path, query: query, best: int32(len(routes)), prefix: -1}
	s.try(x.always)
	s.try(x.exact[path])
	for _, l := range x.lengths {
		if l > len(path) {
			break
		}
		s.try(x.prefixes[path[:l]])
	}
	if s.best == int32(len(routes)) {
		return nil, -1
	}
	return routes[s.best], s.prefix
}

// search is one request's lookup: the lowest-numbered route found to match
// so far (len(routes) for none) and its matched prefix.
type search struct {
	routes      []*Route
	req         *Request
	path, query string
	best        int32
	prefix      int
}

// try checks a list's candidates below the best so far; the first that
// matches is the new best.
func (s *search) try(list []int32) {
	for _, n := range list {
		if n >= s.best {
			return
		}
		if pre, ok := s.routes[n].match(s.req, s.path, s.query); ok {
			s.best, s.prefix = n, pre
			return
		}
	}
}
