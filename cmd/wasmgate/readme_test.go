package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADME_Session runs the README's lint, simulate and diff session as
// written: its policy, its requests, its sed command, and every `$ out/wasmgate`
// command, whose output must be what the README shows.
func TestREADME_Session(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Checking a policy before it meets traffic")
	if !ok {
		t.Fatal("README.md has no section \"Checking a policy before it meets traffic\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(section, -1)
	dir := t.TempDir()
	wasm, err := filepath.Abs(filepath.Join("..", "..", "out", "wasmgate-tinygo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var files, commands int
	for _, b := range blocks {
		lang, body := b[1], b[2]
		switch {
		case lang == "yaml" && strings.HasPrefix(body, "# my-policy.yaml\n"):
			write(t, filepath.Join(dir, "my-policy.yaml"), body)
			files++
		case lang == "" && strings.HasPrefix(body, "{"):
			write(t, filepath.Join(dir, "requests.jsonl"), body)
			files++
		case lang == "sh" && strings.HasPrefix(body, "sed "):
			cmd := exec.Command("bash", "-c", body)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", body, err, out)
			}
		case lang == "console":
			line, want, _ := strings.Cut(body, "\n")
			args := strings.Fields(strings.TrimPrefix(line, "$ out/wasmgate "))
			if args[0] == "simulate" || args[0] == "diff" {
				args = append([]string{args[0], "-wasm", wasm}, args[1:]...)
			}
			for i, a := range args {
				if strings.HasSuffix(a, ".yaml") || strings.HasSuffix(a, ".jsonl") {
					args[i] = filepath.Join(dir, a)
				}
			}
			var out bytes.Buffer
			err := run(context.Background(), args, &out)
			if err != nil && err != exitCode(exitChanged) {
				t.Fatalf("%s: %v", line, err)
			}
			got := strings.ReplaceAll(out.String(), dir+string(filepath.Separator), "")
			if got != want {
				t.Errorf("%s printed:\n%s\nREADME.md shows:\n%s", line, got, want)
			}
			commands++
		}
	}
	if files != 2 || commands != 3 {
		t.Fatalf("found %d input files and %d commands in the README section, want 2 and 3", files, commands)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
