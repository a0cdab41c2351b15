package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyconfig"
)

// limits are the benchmark's own changes to the rate limits, native
// (token_bucket) and the plugin's (rateLimit of each route of the policy).
// Each one must find what it changes: a shipped file that no longer has it
// is an error, not a silently different benchmark.
type limits struct {
	tokens   int64  // bucket size and tokens per fill (0: unchanged)
	noLimit  bool   // remove them: the local_ratelimit filter and each rateLimit
	limitKey string // key the plugin's limits by this request header
}

func (e limits) any() bool { return e.tokens > 0 || e.noLimit || e.limitKey != "" }

const localRateLimit = "envoy.filters.http.local_ratelimit"

// configCommand derives a scenario's configuration as `wasmgate
// envoy-config` does (the same function and flags), plus the limit edits.
func configCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	template := fs.String("template", "", "the Envoy configuration to derive from (required)")
	var o envoyconfig.Options
	o.Register(fs)
	var e limits
	fs.Int64Var(&e.tokens, "tokens", 0, "set every rate limit's bucket size and tokens per fill")
	fs.BoolVar(&e.noLimit, "no-limit", false, "remove the rate limits (the "+localRateLimit+" filter and the policy's rateLimit)")
	fs.StringVar(&e.limitKey, "limit-key", "", "key the policy's rate limits by this request `header`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *template == "" {
		return errors.New("config: -template is required")
	}
	src, err := os.ReadFile(*template)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	out, err := deriveConfig(src, o, e)
	if err != nil {
		return fmt.Errorf("config: %s: %w", *template, err)
	}
	_, err = stdout.Write(out)
	return err
}

// deriveConfig derives from src with o, then applies e.
func deriveConfig(src []byte, o envoyconfig.Options, e limits) ([]byte, error) {
	found := 0
	if e.any() {
		pol, err := envoyconfig.TemplatePolicy(src)
		if err != nil {
			return nil, err
		}
		if pol != nil {
			if o.Policy, err = editPolicy(pol, e, &found); err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
		}
	}
	o.Edit = func(doc *yaml.Node) error {
		envoyconfig.Walk(doc, func(n *yaml.Node) {
			if n.Kind == yaml.SequenceNode && e.noLimit {
				n.Content = slices.DeleteFunc(n.Content, func(item *yaml.Node) bool {
					name := envoyconfig.Value(item, "name")
					drop := name != nil && name.Value == localRateLimit && envoyconfig.Value(item, "typed_config") != nil
					if drop {
						found++
					}
					return drop
				})
			}
			if b := envoyconfig.Value(n, "token_bucket"); b != nil && e.tokens > 0 {
				found++
				for _, k := range []string{"max_tokens", "tokens_per_fill"} {
					if v := envoyconfig.Value(b, k); v != nil {
						v.Value = strconv.FormatInt(e.tokens, 10)
					}
				}
			}
		})
		if e.any() && found == 0 {
			return errors.New("no rate limit to change")
		}
		return nil
	}
	return envoyconfig.Derive(src, o)
}

// editPolicy applies e's limit edits to each route of the JSON policy,
// counting them in found.
func editPolicy(text []byte, e limits, found *int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var policy map[string]any
	if err := dec.Decode(&policy); err != nil {
		return nil, err
	}
	routes, _ := policy["routes"].([]any)
	for _, r := range routes {
		route, _ := r.(map[string]any)
		limit, ok := route["rateLimit"].(map[string]any)
		if !ok {
			continue
		}
		*found++
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
	return append(out, '\n'), err
}
