package vsimport

import (
	"bytes"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// FieldsMarkdown renders the table of every VirtualService field and its
// fate as docs/import-fields.md.
func FieldsMarkdown() []byte {
	// A message is reached when a chain of carried fields leads to it; the
	// fields of one that is not go with the refused field above them.
	reached := map[protoreflect.FullName]bool{}
	refusedAbove := map[protoreflect.FullName]string{}
	var walk func(md protoreflect.MessageDescriptor, carriedChain bool, above string)
	walk = func(md protoreflect.MessageDescriptor, carriedChain bool, above string) {
		name := md.FullName()
		if !strings.HasPrefix(string(name), messagePrefix) || reached[name] || !carriedChain && refusedAbove[name] != "" {
			return
		}
		if carriedChain {
			reached[name] = true
		} else {
			refusedAbove[name] = above
		}
		fds := md.Fields()
		for i := range fds.Len() {
			fd := fds.Get(i)
			child := fd.Message()
			if fd.IsMap() {
				child = fd.MapValue().Message()
			}
			if child == nil {
				continue
			}
			k := fieldKey(md, fd)
			r := fields[k]
			if carriedChain && r.disp == refused {
				walk(child, false, k)
			} else {
				walk(child, carriedChain, above)
			}
		}
	}
	walk(vsDescriptor, true, "")

	var b bytes.Buffer
	b.WriteString(`# VirtualService fields: what ` + "`wasmgate import`" + ` does with each

Generated from the import's table (` + "`cmd/wasmgate/internal/vsimport/fields.go`" + `) by
` + "`go test ./internal/vsimport -run TestFields_Doc -update`" + ` in ` + "`cmd/wasmgate`" + `; a test checks
that the table names every field of istio.io/api's VirtualService (the
networking v1, v1beta1 and v1alpha3 schema) and that this file is current.

- **carried**: mapped into the policy, under the same name unless the note says otherwise.
- **route table**: goes to the rendered VirtualService (` + "`import -route-table`" + `, ` + "`render -route-table`" + `).
- **refused**: the import fails and names the field, its path and this reason. Remove the field, or keep
  the rule in a VirtualService of its own.
- **with X**: a field of a message only a refused field X holds; it is carried as noted once X is.

A refused field is refused whenever it is written, even with a value that does nothing
(` + "`retries: {attempts: 0}`" + `): remove it. Values are checked as istiod reads them (protojson
over the istio.io/api types), and the policy by the plugin's parser.

| Field | Fate | Note |
| --- | --- | --- |
`)
	for _, k := range apiFields() {
		r := fields[k]
		msg := protoreflect.FullName(messagePrefix + k[:strings.LastIndex(k, ".")])
		fate := map[disposition]string{carried: "carried", rendered: "route table", refused: "refused"}[r.disp]
		note := r.why
		if !reached[msg] {
			fate = fmt.Sprintf("with `%s`", refusedAbove[msg])
			if r.disp == carried && note == "" {
				note = "carried as is"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k, fate, strings.ReplaceAll(note, "|", `\|`))
	}
	return b.Bytes()
}

// apiFields lists every field of the VirtualService message and of every
// message it contains, as istio.io/api declares them, keyed as fields is.
func apiFields() []string {
	var out []string
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] || !strings.HasPrefix(string(md.FullName()), messagePrefix) {
			return // the well-known types are values, not messages of fields
		}
		seen[md.FullName()] = true
		fds := md.Fields()
		for i := range fds.Len() {
			fd := fds.Get(i)
			out = append(out, fieldKey(md, fd))
			switch {
			case fd.IsMap() && fd.MapValue().Message() != nil:
				walk(fd.MapValue().Message())
			case !fd.IsMap() && fd.Message() != nil:
				walk(fd.Message())
			}
		}
	}
	walk(vsDescriptor)
	return out
}
