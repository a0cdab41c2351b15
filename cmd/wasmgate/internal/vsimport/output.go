package vsimport

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// object is a JSON object that keeps its keys in the order they were set,
// so the policy reads in the order of the VirtualService.
type object []member

type member struct {
	key   string
	value any
}

func (o *object) set(k string, v any) {
	for i := range *o {
		if (*o)[i].key == k {
			(*o)[i].value = v
			return
		}
	}
	*o = append(*o, member{k, v})
}

// get returns the value of k, nil when absent.
func (o *object) get(k string) any {
	for _, m := range *o {
		if m.key == k {
			return m.value
		}
	}
	return nil
}

func (o *object) has(k string) bool {
	for _, m := range *o {
		if m.key == k {
			return true
		}
	}
	return false
}

func (o *object) del(k string) {
	for i, m := range *o {
		if m.key == k {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return
		}
	}
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key) // a string always marshals
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// JSON returns the policy as indented JSON.
func (r *Result) JSON() []byte {
	var b bytes.Buffer
	_ = json.Indent(&b, r.Policy, "", "  ") // Policy is valid JSON: Parse accepted it
	b.WriteByte('\n')
	return b.Bytes()
}

// YAML returns the policy as YAML (1.2, as the CLI reads policies), with a
// comment naming what it was imported from.
func (r *Result) YAML() ([]byte, error) {
	doc := yamlNode(r.doc)
	doc.HeadComment = "Imported by wasmgate import from " + strings.Join(r.Sources, ", ")
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func yamlNode(v any) *yaml.Node {
	switch v := v.(type) {
	case *object:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, m := range *v {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.key}, yamlNode(m.value))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, item := range v {
			n.Content = append(n.Content, yamlNode(item))
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v, 10)}
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}
