package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployGuide_Migration runs docs/deploy.md's migration guide as
// written: it writes the section's files (a yaml block headed "# NAME", the
// requests block), runs every `$ out/wasmgate` command of its console
// blocks in order, and compares what each prints, standard output and error
// together, with what the guide shows. A command's "> FILE" sends its
// standard output to FILE, as the shell would.
func TestDeployGuide_Migration(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Moving existing VirtualServices onto wasmgate\n")
	if !ok {
		t.Fatal("docs/deploy.md has no section \"Moving existing VirtualServices onto wasmgate\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	wasm, err := filepath.Abs(filepath.Join("..", "..", "out", "wasmgate-tinygo.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wasm); err != nil {
		t.Fatalf("%v: run `make build`", err)
	}
	dir := t.TempDir()
	defer func(w io.Writer) { stderr = w }(stderr)
	var files, commands int
	for _, b := range regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```").FindAllStringSubmatch(section, -1) {
		lang, body := b[1], b[2]
		switch {
		case lang == "yaml" && strings.HasPrefix(body, "# "):
			name, _, _ := strings.Cut(strings.TrimPrefix(body, "# "), "\n")
			write(t, filepath.Join(dir, name), body)
			files++
		case lang == "" && strings.HasPrefix(body, "{"):
			write(t, filepath.Join(dir, "requests.jsonl"), body)
			files++
		case lang == "console":
			cmds := strings.Split(strings.TrimPrefix(body, "$ "), "\n$ ")
			for i, cmd := range cmds {
				if i < len(cmds)-1 {
					cmd += "\n" // the split took the newline before the next "$ "
				}
				line, want, _ := strings.Cut(cmd, "\n")
				runGuideCommand(t, dir, wasm, line, want)
				commands++
			}
		}
	}
	if files != 3 || commands != 9 {
		t.Fatalf("found %d files and %d commands in the guide, want 3 and 9", files, commands)
	}
}

func runGuideCommand(t *testing.T, dir, wasm, line, want string) {
	t.Helper()
	line, redirect, _ := strings.Cut(line, " > ")
	args := strings.Fields(strings.TrimPrefix(line, "out/wasmgate "))
	if args[0] == "simulate" || args[0] == "diff" {
		args = append([]string{args[0], "-wasm", wasm}, args[1:]...)
	}
	for i, a := range args {
		if strings.HasSuffix(a, ".yaml") || strings.HasSuffix(a, ".jsonl") {
			args[i] = filepath.Join(dir, a)
		}
	}
	var shown, out bytes.Buffer
	stderr = &shown
	stdout := &shown
	if redirect != "" {
		stdout = &out
	}
	err := run(context.Background(), args, stdout)
	// import refuses (1) and diff finds a change (2) as the guide shows.
	if err != nil && !(args[0] == "import" && err == exitCode(exitFailed)) && !(args[0] == "diff" && err == exitCode(exitChanged)) {
		t.Fatalf("%s: %v\n%s", line, err, shown.String())
	}
	if redirect != "" {
		write(t, filepath.Join(dir, redirect), out.String())
	}
	if got := strings.ReplaceAll(shown.String(), dir+string(filepath.Separator), ""); got != want {
		t.Errorf("%s printed:\n%s\ndocs/deploy.md shows:\n%s", line, got, want)
	}
}
