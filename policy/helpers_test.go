package policy

import (
	"encoding/json"
	"testing"
)

// headerMap is a HeaderGetter over a map of lower-case names.
type headerMap map[string]string

func (h headerMap) Header(name string) (string, bool) {
	v, ok := h[name]
	return v, ok
}

func mustParse(t testing.TB, js string) *Policy {
	t.Helper()
	p, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// seedPolicy is the seed scenario of the project brief.
const seedPolicy = `{"routes": [{
  "name": "products",
  "match": [{"uri": {"prefix": "/products"}}],
  "rewrite": {"uri": "/"},
  "headers": {"request": {"set": {"x-forwarded-proto": "https"}, "remove": ["x-internal-debug"]},
              "response": {"set": {"x-served-by": "%DESTINATION%"}}},
  "route": [{"destination": {"host": "product-service", "port": 8080}, "weight": 90},
            {"destination": {"host": "product-service-v2", "port": 8080}, "weight": 10}],
  "split": {"hintHeader": "x-route-to", "stickyBy": {"header": "x-user-id"}, "overrideHeader": "x-canary"},
  "rateLimit": {"tokenBucket": {"maxTokens": 100, "tokensPerFill": 10, "fillInterval": "1s"}}
}]}`

// quoteJSON returns s as a JSON string literal.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
