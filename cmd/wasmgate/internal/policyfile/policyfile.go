// Package policyfile reads the policy files users hand the CLI: JSON, which
// the plugin takes as is, or YAML, converted to JSON first.
package policyfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Read reads a policy file and returns it as JSON.
func Read(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out, err := ToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// ToJSON returns a JSON policy unchanged and converts anything else from YAML
// to JSON, keeping the order of keys (the order of header operations and of
// error messages follows it). Broken JSON is read as YAML, whose errors give
// a line.
//
// # Notes
//
// YAML is read as YAML 1.2: only true and false are booleans, so
// `x-debug: on` sets the header to "on". Duplicate keys are kept, so the
// policy parser refuses them with their path, as it does in JSON.
func ToJSON(data []byte) ([]byte, error) {
	if json.Valid(data) {
		return data, nil
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
			return nil, jsonError(data) // meant as JSON: JSON's error says where
		}
		return nil, fmt.Errorf("policy: not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("policy: line %d: a second YAML document; a policy is one document", extra.Line)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, &doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonError locates the syntax error of a document that is not valid JSON.
func jsonError(data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line := 1 + bytes.Count(data[:syntax.Offset], []byte("\n"))
		return fmt.Errorf("policy: not valid JSON: line %d: %v", line, syntax)
	}
	return fmt.Errorf("policy: not valid JSON: %v", err)
}

// jsonNumber is JSON's number grammar.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return errors.New("policy: empty YAML document")
		}
		return writeJSON(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("policy: line %d: keys must be plain strings", k.Line)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k.Value)
			b.WriteByte(':')
			if err := writeJSON(b, v); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, item); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(b, n)
	}
	return nil
}

func writeScalar(b *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		b.WriteString("null")
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("policy: line %d: %w", n.Line, err)
		}
		b.WriteString(strconv.FormatBool(v))
	case "!!int", "!!float":
		raw := strings.ReplaceAll(n.Value, "_", "")
		if jsonNumber.MatchString(raw) {
			b.WriteString(raw) // as written, so the parser sees 1.5 or 1e3 and refuses it
			return nil
		}
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("policy: line %d: %q is not a number JSON can hold", n.Line, n.Value)
		}
		if i, err := strconv.ParseInt(raw, 0, 64); err == nil {
			b.WriteString(strconv.FormatInt(i, 10)) // 0x1F, 0o17
			return nil
		}
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	default:
		writeString(b, n.Value)
	}
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // a string always marshals
	b.Write(out)
}
