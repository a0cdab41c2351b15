package vsimport

import (
	"fmt"
	"slices"
	"strings"
)

// The mappings of fields whose policy form is not Istio's form as is.

// httpRoutes makes each http rule a policy route, remembering where it came
// from for the parser's errors.
func httpRoutes(im *importer, f *field) {
	list, ok := f.value.([]any)
	if !ok {
		im.bad(f.at, "want a list")
		return
	}
	for i, item := range list {
		at := fmt.Sprintf("%s[%d]", f.at, i)
		if r, ok := im.single(at, f.fd, item).(*object); ok {
			im.routes = append(im.routes, r)
			im.origins = append(im.origins, origin{where: im.doc.where, at: at, blocks: im.scope(at, r)})
		}
	}
}

// scope confines a route to the VirtualService's hosts, as Istio applies a
// VirtualService to requests for them only, while the plugin sees every
// request through the gateway: each match block is asked once per host, as
// an authority condition. A block with an authority condition of its own
// keeps it when it is one of the hosts. scope returns the index in the
// VirtualService of each match block of the route, nil when unchanged.
func (im *importer) scope(at string, r *object) (blocks []int) {
	hosts := im.doc.hosts
	if len(hosts) == 0 || slices.Contains(hosts, "*") {
		return nil
	}
	match := []any{&object{}}
	if m, ok := r.get("match").([]any); ok {
		match = m
	}
	var scoped []any
	for i, b := range match {
		block, ok := b.(*object)
		if !ok {
			continue
		}
		if cond, ok := block.get("authority").(*object); ok {
			if exact, ok := cond.get("exact").(string); ok && slices.Contains(hosts, exact) {
				scoped, blocks = append(scoped, block), append(blocks, i)
			} else {
				im.refuse(fmt.Sprintf("%s.match[%d].authority", at, i), "a second authority condition beside the VirtualService's hosts, which a policy match block cannot hold: match exactly one of the hosts, or import with hosts \"*\"")
			}
			continue
		}
		for _, h := range hosts {
			c := append(slices.Clone(*block), member{"authority", &object{{"exact", h}}})
			scoped, blocks = append(scoped, &c), append(blocks, i)
		}
	}
	r.set("match", scoped)
	return blocks
}

// destinations carries the weights as Istio reads them: a single
// destination takes all traffic whatever its weight, and with several an
// absent weight is 0 (the policy requires it written).
func destinations(im *importer, f *field) {
	list, _ := im.value(f.at, f.fd, f.value).([]any)
	for _, d := range list {
		o, ok := d.(*object)
		switch {
		case !ok:
		case len(list) == 1:
			o.del("weight")
		case !o.has("weight"):
			o.set("weight", 0)
		}
	}
	f.out.set(f.fd.JSONName(), list)
}

// rewrite carries the rewrite and warns where rewrite.uri gives another
// path than in Istio, whose prefix_rewrite replaces the matched prefix
// verbatim.
func rewrite(im *importer, f *field) {
	f.out.set(f.fd.JSONName(), im.value(f.at, f.fd, f.value))
	rw, _ := f.value.(map[string]any)
	uri, ok := rw["uri"].(string)
	if !ok {
		return
	}
	at := f.at + ".uri"
	matches, _ := f.holder["match"].([]any)
	if len(matches) == 0 {
		matches = []any{nil}
	}
	for i, m := range matches {
		block, _ := m.(map[string]any)
		cond, _ := block["uri"].(map[string]any)
		prefix, isPrefix := cond["prefix"].(string)
		switch {
		case cond == nil:
			im.warn(at, "match[%d] has no uri condition: Istio replaces only the leading \"/\" (/a is sent as %sa), wasmgate the whole path (/a is sent as %s)", i, uri, uri)
		case isPrefix && strings.HasSuffix(uri, "/") && !strings.HasSuffix(prefix, "/"):
			im.warn(at, "after match[%d]'s prefix %q Istio sends %s/123 as %s/123, wasmgate as %s123", i, prefix, prefix, uri, uri)
		}
	}
}

// headerKeysIstioIgnores are the header match names Istio skips.
var headerKeysIstioIgnores = []string{"uri", "scheme", "method", "authority"}

// stringMatches carries a map of StringMatch; an empty one, which Istio
// reads as "present", becomes the policy's {"present": true}.
func stringMatches(im *importer, f *field) {
	m, ok := f.value.(map[string]any)
	if !ok {
		im.bad(f.at, "want an object")
		return
	}
	out := &object{}
	for _, k := range sortedKeys(m) {
		at := fmt.Sprintf("%s[%q]", f.at, k)
		if f.fd.JSONName() == "headers" && slices.Contains(headerKeysIstioIgnores, k) {
			im.refuse(at, fmt.Sprintf("Istio ignores a header match named %q: remove it", k))
			continue
		}
		if sm, ok := m[k].(map[string]any); m[k] == nil || ok && len(sm) == 0 {
			out.set(k, &object{{"present", true}})
			continue
		}
		out.set(k, im.single(at, f.fd.MapValue(), m[k]))
	}
	f.out.set(f.fd.JSONName(), out)
}

// uriMatch carries the uri condition; with Options.PathPrefix a prefix that
// does not end in "/" becomes a pathPrefix.
func uriMatch(im *importer, f *field) {
	out := im.value(f.at, f.fd, f.value)
	if o, ok := out.(*object); ok && im.pathPrefix && len(*o) == 1 && (*o)[0].key == "prefix" {
		if p, ok := (*o)[0].value.(string); ok && !strings.HasSuffix(p, "/") {
			im.warn(f.at+".prefix", "carried as pathPrefix %q (import -path-prefix): %s/1 still matches, %sX no longer does", p, p, p)
			(*o)[0].key = "pathPrefix"
		}
	}
	f.out.set(f.fd.JSONName(), out)
}

// ignoreURICase is left out for a regex uri, where Istio ignores it and the
// policy would make the regex case-insensitive.
func ignoreURICase(im *importer, f *field) {
	uri, _ := f.holder["uri"].(map[string]any)
	if _, regex := uri["regex"]; regex && f.value == true {
		im.warn(f.at, "Istio ignores it for a regex uri; left out, so the regex stays case-sensitive as in Istio")
		return
	}
	f.out.set(f.fd.JSONName(), f.value)
}

func hosts(im *importer, f *field) {
	im.doc.hosts = im.strings(f)
	for i, h := range im.doc.hosts {
		im.doc.hosts[i] = im.qualify(fmt.Sprintf("%s[%d]", f.at, i), h)
	}
}

// destinationHost carries a destination's host, qualified when short.
func destinationHost(im *importer, f *field) {
	h, ok := f.value.(string)
	if !ok {
		im.bad(f.at, "want a string")
		return
	}
	f.out.set(f.fd.JSONName(), im.qualify(f.at, h))
}

// qualify returns the name Istio reads a short host name (no dot) as: a
// service in the VirtualService's namespace. The rendered VirtualService
// lives elsewhere, where the short name would name another service.
func (im *importer) qualify(at, host string) string {
	if host == "*" || strings.Contains(host, ".") {
		return host
	}
	fqdn := host + "." + im.doc.namespace + ".svc.cluster.local"
	im.warn(at, "short name %q carried as %q, as Istio reads it in the VirtualService's namespace", host, fqdn)
	return fqdn
}
func gateways(im *importer, f *field) { im.doc.gateways = im.strings(f) }

func (im *importer) strings(f *field) []string {
	list, ok := f.value.([]any)
	if !ok {
		im.bad(f.at, "want a list")
		return nil
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			im.bad(fmt.Sprintf("%s[%d]", f.at, i), "want a string")
			continue
		}
		out = append(out, s)
	}
	return out
}
