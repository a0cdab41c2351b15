package simulate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/cmd/wasmgate/internal/envoyproc"
)

// BenchmarkSimulator_Run replays seed-policy requests through each build:
// the cost of one simulated request (headers in, response headers out,
// counters and buckets read back).
func BenchmarkSimulator_Run(b *testing.B) {
	policy, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "policy", "testdata", "valid", "seed.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, build := range []string{"tinygo", "go"} {
		b.Run(build, func(b *testing.B) {
			wasm, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "out", "wasmgate-"+build+".wasm"))
			if err != nil {
				b.Fatalf("%v: run `make build`", err)
			}
			s, err := New(wasm, policy, Options{Seed: 1, Proxy: envoyproc.Shipped})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				req := Request{Method: "GET", Path: fmt.Sprintf("/products/%d", i), Authority: "shop", Client: DefaultClient,
					Headers: [][2]string{{"x-user-id", fmt.Sprint(i % 100)}}, At: time.Duration(i) * time.Millisecond, Line: "bench"}
				if _, err := s.Run(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
