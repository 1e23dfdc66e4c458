package servetest_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The package doc opens with a snippet a reader copies: it must compile.
// It is cut out of doc.go and compiled as a package of its own. Nothing is
// written under the package's directory, which is read-only in the module
// cache (a user's `go test all`): the file is written to a temporary
// directory and handed to go build through -overlay at a path under
// testdata (which ./... patterns skip), so that it resolves imports as a
// package of this module would.
func TestPackageDocSnippetCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package")
	}
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var snippet []string
	for _, l := range strings.Split(string(src), "\n") {
		if code, ok := strings.CutPrefix(l, "//\t"); ok {
			snippet = append(snippet, code)
		} else if len(snippet) > 0 {
			break
		}
	}
	if len(snippet) == 0 {
		t.Fatal("no snippet in the package doc")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	before := tree(t, wd)
	tmp := t.TempDir()
	// A non-test file, so that go build compiles it; a package that is
	// not main is compiled and not linked.
	file := "package snippet\n\nimport (\n\t\"context\"\n\t\"testing\"\n\n\t\"github.com/plugkit/vaultplugin/serve/servetest\"\n)\n\n" + strings.Join(snippet, "\n") + "\n"
	real := filepath.Join(tmp, "snippet.go")
	if err := os.WriteFile(real, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(wd, "testdata", "snippet", "snippet.go"): real},
	})
	if err != nil {
		t.Fatal(err)
	}
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "-overlay="+overlayFile, "./testdata/snippet")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the package doc's snippet does not compile: %v\n%s\n%s", err, out, file)
	}
	if after := tree(t, wd); !slices.Equal(before, after) {
		t.Errorf("the package's directory changed:\nbefore %q\nafter  %q", before, after)
	}
}

// tree lists the paths under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		paths = append(paths, path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
