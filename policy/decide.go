package policy

// Choose makes the choices of one request and writes them to d, which it
// resets first: the route, the rewrite, the destination and the rate-limit
// key. Decide builds a whole Plan on top of it. The first route whose match holds wins; with none, d.Route
// is nil and the request is left alone.
//
// random must be a uniformly random 64-bit number. It is used only for a
// weighted pick that is not sticky (no sticky key configured, or the
// request lacks it).
//
// # Notes
//
// Choose reads the Policy only, so it is safe for concurrent use. It does
// not allocate, except for a rewritten :path that is not a piece of the
// original one or of the policy (e.g. "/api/x" → "/v2/x": one string, since
// Go strings cannot share memory with two sources) and for regex rewrites.
func (p *Policy) Choose(req *Request, random uint64, d *Decision) {
	if d == nil {
		return
	}
	*d = Decision{}
	if req == nil {
		return
	}
	path, query := splitQuery(req.Path)
	for _, r := range p.routes {
		prefix, ok := r.match(req, path, query)
		if !ok {
			continue
		}
		d.Route = r
		if r.Split != nil {
			d.Destination, d.Overridden = r.Split.pick(req, random)
		}
		if r.rewrite != nil {
			d.Path, d.Authority = r.rewrite.apply(req.Path, path, prefix)
		}
		if r.RateLimit != nil {
			d.LimitKey = r.RateLimit.keyOf(req)
		}
		return
	}
}

// UsesClientAddress reports whether any route may read
// Request.ClientAddress (a sticky or rate-limit key, or
// %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%), so a caller can skip fetching
// it otherwise.
func (p *Policy) UsesClientAddress() bool { return p.usesClientAddress }

// UsesMethod and UsesAuthority report whether any route may read
// Request.Method or Request.Authority (a match condition or a %REQ()%
// value), so a caller can skip fetching them otherwise.
func (p *Policy) UsesMethod() bool    { return p.usesMethod }
func (p *Policy) UsesAuthority() bool { return p.usesAuthority }

// reads reports whether the route reads the pseudo-header name (":method"
// or ":authority") of a request.
func (r *Route) reads(name string) bool {
	for _, b := range r.matches {
		if name == ":method" && b.method != nil || name == ":authority" && b.authority != nil {
			return true
		}
	}
	if name == ":method" && r.GlobalLimit.reads(entryMethod) || name == ":authority" && r.GlobalLimit.reads(entryAuthority) {
		return true
	}
	for _, ops := range [][]HeaderOp{r.RequestHeaders, r.ResponseHeaders} {
		for _, op := range ops {
			for _, part := range op.Value.parts {
				if part.kind == partHeader && part.text == name {
					return true
				}
			}
		}
	}
	return false
}

func (r *Route) usesClientAddress() bool {
	if r.Split != nil && r.Split.sticky.kind == stickyClientAddress ||
		r.RateLimit != nil && r.RateLimit.key.kind == limitClientAddress ||
		r.GlobalLimit.reads(entryClientAddress) {
		return true
	}
	for _, ops := range [][]HeaderOp{r.RequestHeaders, r.ResponseHeaders} {
		for _, op := range ops {
			for _, part := range op.Value.parts {
				if part.kind == partClientAddress {
					return true
				}
			}
		}
	}
	return false
}
