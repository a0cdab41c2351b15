package policy

import (
	"slices"
	"strconv"
	"strings"
)

// RedirectDetails is the response code detail of a redirect.
const RedirectDetails = "wasmgate_redirect"

// Redirect codes Istio translates into Envoy's RedirectAction; Istio drops a
// route with any other.
var redirectCodes = []uint64{301, 302, 303, 307, 308}

// redirectSchemes are the values of "scheme".
var redirectSchemes = []string{"http", "https"}

// derivePorts are the values of "derivePort", in the order of the
// constants below.
var derivePorts = []string{"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"}

const (
	portFromProtocolDefault = iota
	portFromRequest
)

var schemaRedirect = &Schema{Kind: KindObject, Def: "redirect",
	MinFields: 1, // and one of them other than redirectCode: checked by the parser
	Doc:       "Answer with a redirect instead of forwarding, as Istio's HTTPRedirect.",
	Excludes:  [][2]string{{"port", "derivePort"}},
	Fields: []*Field{
		optional("uri", &Schema{Kind: KindString, Pattern: `^/[^#\x00-\x20\x7f]*$`,
			Doc: "Replaces the path; the request's query is kept unless this has one of its own."}),
		optional("authority", &Schema{Kind: KindString, Pattern: `^[^\r\n\x00 \t/?#]+$`,
			Doc: "Replaces the authority (host and port)."}),
		optional("scheme", &Schema{Kind: KindString, Enum: redirectSchemes,
			Doc: "Replaces the scheme; default: the request's."}),
		optional("port", intDecl("Replaces the port (left out when it is the scheme's default).", 1, 65535)),
		optional("derivePort", &Schema{Kind: KindString, Enum: derivePorts,
			Doc: "FROM_REQUEST_PORT: the port the request came in on; FROM_PROTOCOL_DEFAULT: the scheme's default."}),
		optional("redirectCode", withDefault(intDecl("The status: 301, 302, 303, 307 or 308.", 300, 399), 301)),
	}}

func init() {
	register(&feature{order: 54,
		fields: []*Field{optional("redirect", schemaRedirect)},
		excludes: [][2]string{{"redirect", "route"}, {"redirect", "fault"}, {"redirect", "rewrite"},
			{"redirect", "directResponse"}},
		compile: compileRedirect})
}

// redirect is a compiled "redirect": what the Location of each request is
// built from, as Envoy's RedirectAction builds it from Istio's translation.
type redirect struct {
	uri       string // "" keeps the request's path
	uriQuery  bool   // uri has its own query: the request's is dropped
	authority string // "" keeps the request's host
	scheme    string // "" keeps the request's scheme
	// port is the port to write, portSet whether one is written at all
	// (a port or a derivePort); fromRequest takes it from Request.Port.
	port        uint32
	portSet     bool
	fromRequest bool
	status      uint32
	// fixed is the whole Location when nothing in it depends on the
	// request, "" otherwise.
	fixed string
}

func compileRedirect(p *parser, route *object, _ *Route) unit {
	v, ok := route.value("redirect")
	if !ok || !route.excludes("redirect") {
		return nil
	}
	path := route.at("redirect")
	o, ok := p.object(path, v, schemaRedirect)
	if !ok {
		return nil
	}
	before := len(p.errs)
	rd := &redirect{status: 301}
	if !o.has("uri") && !o.has("authority") && !o.has("scheme") && !o.has("port") && !o.has("derivePort") {
		p.fail(path, `must have at least one of "uri", "authority", "scheme", "port", "derivePort"`)
	}
	if o.has("port") && !o.excludes("port") {
		return nil
	}
	if s, ok := o.str("uri"); ok {
		rd.uri, rd.uriQuery = s, strings.Contains(s, "?")
		switch {
		case !strings.HasPrefix(s, "/"):
			p.fail(o.at("uri"), "%q must start with \"/\"", s)
		case strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) >= 0:
			p.fail(o.at("uri"), "%q must not contain \"#\", spaces or control characters", s)
		}
	}
	if av, ok := o.value("authority"); ok {
		rd.authority, _ = p.headerValue(o.at("authority"), av)
		if strings.ContainsAny(rd.authority, " \t/?#") {
			p.fail(o.at("authority"), "%q is not a valid authority", rd.authority)
		}
	}
	if n, ok := o.enum("scheme"); ok {
		rd.scheme = redirectSchemes[n]
	}
	if n, ok := o.integer("port"); ok {
		rd.port, rd.portSet = uint32(n), true
	}
	if n, ok := o.enum("derivePort"); ok {
		rd.portSet, rd.fromRequest = true, n == portFromRequest
	}
	if n, ok := o.integer("redirectCode"); ok {
		if !slices.Contains(redirectCodes, n) {
			p.fail(o.at("redirectCode"), "must be 301, 302, 303, 307 or 308, got %d", n)
		}
		rd.status = uint32(n)
	}
	if len(p.errs) != before {
		return nil
	}
	if rd.scheme != "" && rd.authority != "" && !rd.fromRequest && rd.uriQuery {
		rd.fixed = rd.scheme + "://" + rd.authority + rd.portSuffix(rd.scheme, 0) + rd.uri
	}
	return &redirectUnit{rd: rd}
}

// portSuffix is ":port" or "": as Istio translates it, a port equal to
// the scheme's default is left out.
func (rd *redirect) portSuffix(scheme string, requestPort uint32) string {
	if !rd.portSet {
		return ""
	}
	port := rd.port
	if rd.fromRequest {
		port = requestPort
	}
	if port == 0 || port == 80 && scheme == "http" || port == 443 && scheme == "https" {
		return ""
	}
	return ":" + strconv.FormatUint(uint64(port), 10)
}

// location builds the Location of req's redirect, as Envoy's
// RedirectAction does: scheme://host[:port]path, the request's query kept
// unless uri has its own.
func (rd *redirect) location(req *Request) string {
	if rd.fixed != "" {
		return rd.fixed
	}
	scheme := rd.scheme
	if scheme == "" {
		scheme = req.Scheme
	}
	if scheme == "" {
		scheme = "http"
	}
	port := rd.portSuffix(scheme, req.Port)
	host := rd.authority
	if host == "" {
		host = redirectHost(req.Authority, scheme, req.Scheme, rd.portSet)
	}
	path := req.Path
	if rd.uri != "" {
		path = rd.uri
		if !rd.uriQuery {
			if q := strings.IndexByte(req.Path, '?'); q >= 0 {
				path = rd.uri + req.Path[q:]
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + host + port + path
}

// redirectHost is the request's authority as Envoy keeps it in a
// redirect: without its port when the redirect sets one, or when the
// scheme changes and the port is the old scheme's default.
func redirectHost(authority, scheme, requestScheme string, portSet bool) string {
	end := strings.LastIndexByte(authority, ':')
	if strings.HasPrefix(authority, "[") {
		if end = strings.LastIndex(authority, "]:"); end >= 0 {
			end++
		}
	}
	if end < 0 {
		return authority
	}
	port := authority[end:]
	remove := portSet
	if scheme != requestScheme {
		remove = remove || requestScheme == "https" && port == ":443" || requestScheme == "http" && port == ":80"
	}
	if remove {
		return authority[:end]
	}
	return authority
}

type redirectUnit struct {
	noUnit
	rd         *redirect
	redirected Counter
}

func (u *redirectUnit) counters(def func(string) Counter) { u.redirected = def(CounterRedirected) }

func (u *redirectUnit) reads(part requestPart) bool {
	switch part {
	case readsScheme:
		return u.rd.fixed == ""
	case readsPort:
		return u.rd.fromRequest
	case readsAuthority:
		return u.rd.authority == ""
	}
	return false
}

func (u *redirectUnit) step(plan *Plan, req *Request, _ Env) bool {
	plan.Counters = append(plan.Counters, u.redirected)
	headers := append(plan.reply.Headers[:0], [2]string{"location", u.rd.location(req)})
	plan.answer(u.rd.status, RedirectDetails, plan.routeResponseHeaders(headers), "")
	return false
}

func (u *redirectUnit) describe(line string, plan *Plan) string {
	if r := plan.Reply; r != nil && r.Details == RedirectDetails {
		line += " redirect=" + strconv.Quote(r.Headers[0][1])
	}
	return line
}
