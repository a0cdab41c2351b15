package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestReport compares the report of testdata/results.jsonl (three rounds
// of two native scenarios, two plugin scenarios and the TinyGo floor, and a
// soak) with its golden file.
func TestReport(t *testing.T) {
	recs, err := readRecords(filepath.Join("testdata", "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report(&out, recs, 2); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("report differs from %s (go test -update rewrites it):\n%s", golden, out.String())
	}
}

func TestReport_Errors(t *testing.T) {
	wrk := func(requests, errors, status int64) *wrkSummary {
		return &wrkSummary{Requests: requests, DurationUS: 1e6, Errors: errors, Status: status}
	}
	tests := []struct {
		name string
		recs []record
		want string
	}{
		{
			name: "failed requests",
			recs: []record{
				{Kind: "sat", Scenario: "native", Round: 1, Wrk: wrk(1000, 2, 3)},
				{Kind: "sat", Scenario: "go", Round: 2, Wrk: wrk(0, 0, 0)},
			},
			want: "report: native sat round 1: 2 socket errors, 3 responses with status ≥ 400; go sat round 2: no request completed",
		},
		{
			name: "memory grows",
			recs: []record{
				{Kind: "soak", Scenario: "go", RSSKiB: 100 << 10, Total: 200000, Wrk: wrk(200000, 0, 0)},
				{Kind: "soak", Scenario: "go", RSSKiB: 103 << 10, Total: 400000, Wrk: wrk(200000, 0, 0)},
			},
			want: "report: go: Envoy's RSS grew 3.0 MiB over the soak (more than 2.0)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := report(&bytes.Buffer{}, tt.recs, 2)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v\nwant %s", err, tt.want)
			}
		})
	}
}
