package policy

// JSONSchema renders the declared policy schema as a JSON Schema (draft-07,
// the draft yaml-language-server and VS Code validate best), ready for
// encoding/json. Schemas with a Def name become definitions referenced by
// $ref.
//
// # Notes
//
// The schema states types, known fields, required fields, enums, ranges and
// patterns. What it cannot state is checked by Parse only; see Declaration.
func JSONSchema() map[string]any {
	g := jsonSchemaGen{defs: map[string]any{}, seen: map[string]*Schema{}}
	root := g.schema(schemaPolicy)
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = "wasmgate policy"
	root["definitions"] = g.defs
	return root
}

type jsonSchemaGen struct {
	defs map[string]any
	seen map[string]*Schema
}

// ref returns s inline, or a reference to its definition.
func (g *jsonSchemaGen) ref(s *Schema) map[string]any {
	if s.Def == "" {
		return g.schema(s)
	}
	if _, ok := g.seen[s.Def]; !ok { // Def names are unique: TestDeclaration_Defs
		g.seen[s.Def] = s
		g.defs[s.Def] = g.schema(s)
	}
	return map[string]any{"$ref": "#/definitions/" + s.Def}
}

func (g *jsonSchemaGen) schema(s *Schema) map[string]any {
	if s.Alt != nil {
		main := *s
		main.Alt, main.Doc = nil, ""
		out := map[string]any{"anyOf": []any{g.schema(&main), g.ref(s.Alt)}}
		if s.Doc != "" {
			out["description"] = s.Doc
		}
		return out
	}
	out := map[string]any{}
	if s.Doc != "" {
		out["description"] = s.Doc
	}
	if s.Default != nil {
		out["default"] = s.Default
	}
	switch s.Kind {
	case KindObject:
		out["type"] = "object"
		out["additionalProperties"] = false
		props := map[string]any{}
		var req []string
		for _, f := range s.Fields {
			props[f.Name] = g.ref(f.Value)
			if f.Required {
				req = append(req, f.Name)
			}
		}
		out["properties"] = props
		if len(req) > 0 {
			out["required"] = req
		}
		if s.OneOf {
			out["minProperties"], out["maxProperties"] = 1, 1
		}
		if s.MinFields > 0 {
			out["minProperties"] = s.MinFields
		}
		if len(s.Requires) > 0 {
			deps := map[string]any{}
			for _, r := range s.Requires {
				deps[r[0]] = []string{r[1]}
			}
			out["dependencies"] = deps
		}
		if len(s.Excludes) > 0 {
			var nots []any
			for _, x := range s.Excludes {
				nots = append(nots, map[string]any{"not": map[string]any{"required": []string{x[0], x[1]}}})
			}
			out["allOf"] = nots
		}
	case KindMap:
		out["type"] = "object"
		out["propertyNames"] = g.ref(s.Keys)
		out["additionalProperties"] = g.ref(s.Values)
	case KindList:
		out["type"] = "array"
		out["items"] = g.ref(s.Items)
		if s.MinItems > 0 {
			out["minItems"] = s.MinItems
		}
		if len(s.RequiredWhenMany) > 0 {
			out["if"] = map[string]any{"minItems": 2}
			out["then"] = map[string]any{"items": map[string]any{"required": s.RequiredWhenMany}}
		}
	case KindString:
		out["type"] = "string"
		if len(s.Enum) > 0 {
			out["enum"] = s.Enum
		}
		if s.Pattern != "" {
			out["pattern"] = s.Pattern
		}
	case KindInteger:
		out["type"] = "integer"
		out["minimum"], out["maximum"] = s.Min, s.Max
	case KindNumber:
		out["type"] = "number"
		out["minimum"], out["maximum"] = s.Min, s.Max
	case KindBoolean:
		out["type"] = "boolean"
		if s.OnlyTrue {
			out["const"] = true
		}
	}
	return out
}
