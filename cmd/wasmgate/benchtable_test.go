package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADME_BuildTable checks that README.md's build table is
// docs/BENCHMARKS.md's summary table, and that the summary's module sizes
// are the ones the "Module size" section records, so a number in the README
// always has a measured run behind it.
func TestREADME_BuildTable(t *testing.T) {
	readme := readDoc(t, "README.md")
	bench := readDoc(t, filepath.Join("docs", "BENCHMARKS.md"))
	got := firstTable(t, section(t, readme, "Two builds: which one to pick"))
	want := firstTable(t, section(t, bench, "Summary"))
	if got != want {
		t.Errorf("README.md's build table:\n%s\ndocs/BENCHMARKS.md's summary:\n%s", got, want)
	}
	sizes := section(t, bench, "Module size")
	var row string
	for _, line := range strings.Split(want, "\n") {
		if strings.HasPrefix(line, "| module size |") {
			row = line
		}
	}
	found := regexp.MustCompile(`[0-9][0-9 ]+[0-9] B`).FindAllString(row, -1)
	if len(found) != 2 {
		t.Fatalf("summary's module size row %q: want two sizes in bytes, found %q", row, found)
	}
	for _, size := range found {
		if !strings.Contains(sizes, "| "+strings.TrimSuffix(size, " B")+" |") {
			t.Errorf("summary's module size %s is not in the table of \"Module size\"", size)
		}
	}
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text under the "## heading" of doc, up to the next
// "## " heading.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("no section %q", heading)
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	return rest
}

// firstTable returns the first Markdown table of text, one line per row.
func firstTable(t *testing.T, text string) string {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "|"):
			rows = append(rows, line)
		case len(rows) > 0:
			return strings.Join(rows, "\n")
		}
	}
	if len(rows) == 0 {
		t.Fatal("no table")
	}
	return strings.Join(rows, "\n")
}
