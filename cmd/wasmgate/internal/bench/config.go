package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// edits are the changes config makes to an Envoy bootstrap. Each one must
// find what it changes: a shipped file that no longer has it is an error,
// not a silently different benchmark.
type edits struct {
	ports       map[string]string // port_value OLD → NEW
	wasm        string            // every .wasm filename
	dropFilters []string          // HTTP filters removed by name
	// The rate limits, native (token_bucket) and the plugin's (rateLimit
	// of each route of the policy, the Wasm filter's StringValue):
	tokens   int64  // bucket size and tokens per fill (0: unchanged)
	noLimit  bool   // remove them: the local_ratelimit filter and each rateLimit
	limitKey string // key the plugin's limits by this request header
}

const localRateLimit = "envoy.filters.http.local_ratelimit"

func configCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	in := fs.String("in", "", "the Envoy bootstrap YAML to derive from (required)")
	e := edits{ports: map[string]string{}}
	fs.Func("port", "replace `OLD=NEW` in every port_value (repeatable)", func(s string) error {
		old, repl, ok := strings.Cut(s, "=")
		if _, err := strconv.ParseUint(repl, 10, 16); !ok || err != nil {
			return fmt.Errorf("want OLD=NEW with NEW a port, got %q", s)
		}
		e.ports[old] = repl
		return nil
	})
	fs.StringVar(&e.wasm, "wasm", "", "load this `module` in every Wasm filter")
	fs.Func("drop-filter", "remove the HTTP filter of this `name` (repeatable)", func(s string) error {
		e.dropFilters = append(e.dropFilters, s)
		return nil
	})
	fs.Int64Var(&e.tokens, "tokens", 0, "set every rate limit's bucket size and tokens per fill")
	fs.BoolVar(&e.noLimit, "no-limit", false, "remove the rate limits (the "+localRateLimit+" filter and the policy's rateLimit)")
	fs.StringVar(&e.limitKey, "limit-key", "", "key the policy's rate limits by this request `header`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("config: -in is required")
	}
	src, err := os.ReadFile(*in)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	out, err := deriveConfig(src, e)
	if err != nil {
		return fmt.Errorf("config: %s: %w", *in, err)
	}
	_, err = stdout.Write(out)
	return err
}

// deriveConfig applies e to the YAML document src.
func deriveConfig(src []byte, e edits) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if e.noLimit {
		e.dropFilters = append(e.dropFilters, localRateLimit)
	}
	found := map[string]int{}
	var policyErr error
	walk(&doc, func(n *yaml.Node) {
		if n.Kind == yaml.SequenceNode && len(e.dropFilters) > 0 {
			kept := n.Content[:0]
			for _, item := range n.Content {
				if name := value(item, "name"); name != nil && slices.Contains(e.dropFilters, name.Value) && value(item, "typed_config") != nil {
					found["drop-filter "+name.Value]++
					found["limit"]++
					continue
				}
				kept = append(kept, item)
			}
			n.Content = kept
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		if v := value(n, "port_value"); v != nil {
			if repl, ok := e.ports[v.Value]; ok {
				found["port "+v.Value]++
				v.Value = repl
			}
		}
		if v := value(n, "filename"); v != nil && e.wasm != "" && strings.HasSuffix(v.Value, ".wasm") {
			found["wasm"]++
			v.Value, v.Style = e.wasm, yaml.DoubleQuotedStyle
		}
		if t := value(n, "@type"); t != nil && t.Value == "type.googleapis.com/google.protobuf.StringValue" {
			if v := value(n, "value"); v != nil {
				policy, err := editPolicy(v.Value, e, found)
				if err != nil {
					policyErr = errors.Join(policyErr, fmt.Errorf("line %d: policy: %w", v.Line, err))
				}
				v.Value, v.Style = policy, yaml.LiteralStyle
			}
		}
		if b := value(n, "token_bucket"); b != nil && e.tokens > 0 {
			found["limit"]++
			for _, k := range []string{"max_tokens", "tokens_per_fill"} {
				if v := value(b, k); v != nil {
					v.Value = strconv.FormatInt(e.tokens, 10)
				}
			}
		}
	})
	if policyErr != nil {
		return nil, policyErr
	}
	var missing []string
	for old := range e.ports {
		missing = appendMissing(missing, found, "port "+old)
	}
	if e.wasm != "" {
		missing = appendMissing(missing, found, "wasm")
	}
	for _, f := range e.dropFilters {
		if f != localRateLimit {
			missing = appendMissing(missing, found, "drop-filter "+f)
		}
	}
	if e.tokens > 0 || e.noLimit || e.limitKey != "" {
		missing = appendMissing(missing, found, "limit")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("nothing to change for %s", strings.Join(missing, ", "))
	}
	return yaml.Marshal(&doc)
}

// editPolicy applies e's limit edits to each route of the JSON policy text,
// counting them in found["limit"]; without such edits it returns text as it
// is.
func editPolicy(text string, e edits, found map[string]int) (string, error) {
	if e.tokens == 0 && !e.noLimit && e.limitKey == "" {
		return text, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var policy map[string]any
	if err := dec.Decode(&policy); err != nil {
		return "", err
	}
	routes, _ := policy["routes"].([]any)
	for _, r := range routes {
		route, _ := r.(map[string]any)
		limit, ok := route["rateLimit"].(map[string]any)
		if !ok {
			continue
		}
		found["limit"]++
		if e.noLimit {
			delete(route, "rateLimit")
			continue
		}
		if bucket, ok := limit["tokenBucket"].(map[string]any); ok && e.tokens > 0 {
			bucket["maxTokens"], bucket["tokensPerFill"] = e.tokens, e.tokens
		}
		if e.limitKey != "" {
			limit["key"] = map[string]string{"header": e.limitKey}
		}
	}
	out, err := json.MarshalIndent(policy, "", "  ")
	return string(out) + "\n", err
}

func appendMissing(missing []string, found map[string]int, what string) []string {
	if found[what] == 0 {
		return append(missing, what)
	}
	return missing
}

// walk calls f on n and every node below it, aliases excepted (their anchor
// is visited once).
func walk(n *yaml.Node, f func(*yaml.Node)) {
	f(n)
	for _, c := range n.Content {
		walk(c, f)
	}
}

// value returns the value of key in mapping n, or nil.
func value(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
