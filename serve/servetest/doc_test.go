package servetest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The package doc opens with a snippet a reader copies: it must compile.
// It is cut out of servetest.go, put in a test file of its own under
// testdata (which ./... patterns skip), and vetted.
func TestPackageDocSnippetCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package")
	}
	src, err := os.ReadFile("servetest.go")
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
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("testdata", "snippet-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := "package snippet_test\n\nimport (\n\t\"context\"\n\t\"testing\"\n\n\t\"github.com/plugkit/vaultplugin/serve/servetest\"\n)\n\n" + strings.Join(snippet, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "snippet_test.go"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "vet", "./"+filepath.ToSlash(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("the package doc's snippet does not compile: %v\n%s\n%s", err, out, file)
	}
}
