package servetest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// Compile returns the binary Build would, from the same cache.
func TestCompile(t *testing.T) {
	bin, err := servetest.Compile(context.Background(), plugin)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Fatalf("Compile returned %s: %v", bin, err)
	}
	if b := servetest.Build(t, plugin); b != bin {
		t.Errorf("Build returned %s, Compile %s: want the same binary", b, bin)
	}
}

// A package that does not compile is an error holding the compiler's
// message, not a failed test; a cancelled context is an error wrapping
// the context's, and is not remembered for the next caller.
func TestCompileErrors(t *testing.T) {
	const broken = "./testdata/broken"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := servetest.Compile(ctx, broken)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v, want context.Canceled", err)
	}

	_, err = servetest.Compile(context.Background(), broken)
	if err == nil {
		t.Fatal("a package that does not compile compiled")
	}
	for _, want := range []string{"servetest: go build " + broken + ": ", "undefined: undefinedOnPurpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled build was remembered: %v", err)
	}
}
