package vaultplugin_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/server"
)

// The exit codes are described once: the constants' documentation says
// what -help prints (server.ExitCodes), word for word, and the other
// documents point to the constants.
func TestExitConstantsDocumentWhatHelpPrints(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "exit.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	p, err := doc.NewFromFiles(fset, []*ast.File{f}, "github.com/plugkit/vaultplugin")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, c := range p.Consts {
		for _, spec := range c.Decl.Specs {
			vs := spec.(*ast.ValueSpec)
			if vs.Doc != nil {
				docs[vs.Names[0].Name] = strings.Join(strings.Fields(vs.Doc.Text()), " ")
			}
		}
	}
	names := map[int]string{vaultplugin.ExitOK: "ExitOK", vaultplugin.ExitFailure: "ExitFailure", vaultplugin.ExitUsage: "ExitUsage"}
	codes := server.ExitCodes()
	if len(codes) != len(names) {
		t.Fatalf("-help lists %d exit codes, the package has %d constants", len(codes), len(names))
	}
	for _, e := range codes {
		name := names[e.Code]
		want := name + " means " + e.Meaning + "."
		if docs[name] != want {
			t.Errorf("%s's documentation is\n\t%q\nwant what -help prints:\n\t%q", name, docs[name], want)
		}
	}
}

// exitList finds a list of exit codes with their meanings: "Exit codes:
// 0 served…", "exit code 0 when…".
var exitList = regexp.MustCompile(`(?i)exit codes?:? (//)? ?0 [a-z]`)

// No other document of the module spells the exit codes out: they point
// to the constants (a copy would drift).
func TestNoOtherExitCodeTable(t *testing.T) {
	for _, path := range []string{"doc.go", "README.md", "serve/doc.go", "serve/serve.go", "dbserve/doc.go", "dbserve/database.go"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(string(b)), " ")
		if m := exitList.FindString(flat); m != "" {
			t.Errorf("%s lists the exit codes (%q): point to vaultplugin.Exit… instead", path, m)
		}
		for _, e := range server.ExitCodes() {
			for _, frag := range []string{fmt.Sprintf("%d  %s", e.Code, e.Meaning[:20]), e.Meaning} {
				if strings.Contains(flat, strings.Join(strings.Fields(frag), " ")) {
					t.Errorf("%s repeats exit code %d's meaning (%q): point to vaultplugin.Exit… instead", path, e.Code, frag)
				}
			}
		}
	}
}

func ExampleExitCode() {
	fmt.Println(vaultplugin.ExitCode(nil))
	fmt.Println(vaultplugin.ExitCode(errors.New("listening: address in use")))
	fmt.Println(vaultplugin.ExitCode(fmt.Errorf("invalid option: %w", vaultplugin.ErrUsage)))
	// Output:
	// 0
	// 1
	// 2
}
