package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The check decides outcomes by types (servetest.StartError,
// servetest.ErrNotMultiplexed) and, where the words come from another
// process, by the phrases internal/proctext names: never by searching for
// text that another package of this module writes. Such a search breaks
// silently the day that package rewords its message; a type or a named
// phrase breaks the build, or changes both sides at once.
//
// TestNoMessageTextOfOurPackages enforces it. It collects every text the
// check's code searches for, the needles: the literal (or constant)
// arguments of strings.Contains, HasPrefix, TrimPrefix, Cut and their
// kin, of the check's own functions that pass a parameter on to those
// (lineWith, quoteAround…), and of comparisons with an Error() result. A
// needle named from another package (proctext.ByHand) is shared, not
// copied, and is fine. A needle found inside a string literal of any other
// package of the module is an error. Texts of other modules (go-plugin's,
// vault/api's) cannot be typed and are allowed: they are in no literal of
// ours, or only quoted there, as the command's help quotes them. Needles
// shorter than minNeedle bytes say too little to be a message (": ", "|",
// "vault").
func TestNoMessageTextOfOurPackages(t *testing.T) {
	needles := needlesIn(t, parseDir(t, "."))
	if len(needles) == 0 {
		t.Fatal("found no needles: the scan is broken")
	}
	ours := literalsOfModule(t, moduleRoot(t))
	for _, f := range findings(needles, ours) {
		t.Error(f)
	}
}

// The scan finds what TestNoMessageTextOfOurPackages forbids: the checks
// this package made before servetest had error types, matching servetest's
// and serve's messages.
func TestTextScanNotices(t *testing.T) {
	const src = `package check

import "strings"

const stderrMark = "\nplugin stderr:\n"

func startCause(msg, bin string) string {
	line := strings.TrimPrefix(firstLine(msg), "servetest: starting "+bin+": ")
	_, tail, _ := strings.Cut(msg, stderrMark)
	return line + tail
}

func multiplexes(err error) bool { return !strings.Contains(err.Error(), "does not multiplex") }

func refused(text string) bool { return has(text, "running it by hand serves nothing") }

func has(s, sub string) bool { return strings.Contains(s, sub) }

func same(err error) bool { return err.Error() == "servetest: the plugin is closed" }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "old.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(findings(needlesIn(t, &parsed{fset: fset, files: []*ast.File{f}}), literalsOfModule(t, moduleRoot(t))), "\n")
	for _, want := range []string{`"servetest: starting "`, `"\nplugin stderr:\n"`, `"does not multiplex"`, `"running it by hand serves nothing"`, `"servetest: the plugin is closed"`} {
		if !strings.Contains(got, "searches for "+want) {
			t.Errorf("the scan missed %s; it found:\n%s", want, got)
		}
	}
}

// minNeedle is the shortest needle the scan considers a message's text.
const minNeedle = 8

// allowedNeedles are needles that occur in other packages' literals on
// purpose, with the reason.
var allowedNeedles = map[string]string{
	// The mlock check's criterion is that a plugin which cannot lock its
	// memory names the capability to grant; every plugin's words are
	// judged by it, serve.Run's included, whose hint passes it.
	"IPC_LOCK": "the capability's name is the mlock check's criterion",
}

// needle is a text the check searches for, where it does.
type needle struct {
	text string
	pos  token.Position
}

// parsed is a package's non-test files.
type parsed struct {
	fset  *token.FileSet
	files []*ast.File
}

func parseDir(t *testing.T, dir string) *parsed {
	t.Helper()
	p := &parsed{fset: token.NewFileSet()}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(p.fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.files = append(p.files, f)
	}
	return p
}

// searchFuncs are the functions of strings, bytes and errwrap that search
// their first argument for the second (EqualFold compares both).
var searchFuncs = map[string]bool{
	"Contains": true, "HasPrefix": true, "HasSuffix": true, "TrimPrefix": true, "TrimSuffix": true,
	"CutPrefix": true, "CutSuffix": true, "Cut": true, "Index": true, "LastIndex": true, "Count": true,
	"EqualFold": true, "Split": true, "SplitN": true, "SplitAfter": true, "Replace": true, "ReplaceAll": true,
}

// needlesIn returns every needle of the package p.
func needlesIn(t *testing.T, p *parsed) []needle {
	t.Helper()
	consts := map[string]ast.Expr{}
	for _, f := range p.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							consts[name.Name] = vs.Values[i]
						}
					}
				}
			}
			return true
		})
	}
	// wrappers maps a function of the package to the index of its
	// parameter that it searches for, directly or through another
	// wrapper; found to a fixed point.
	wrappers := map[string]int{}
	for changed := true; changed; {
		changed = false
		for _, f := range p.files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				params := paramIndex(fd)
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					for _, arg := range searchedArgs(call, wrappers) {
						if id, ok := arg.(*ast.Ident); ok {
							if i, ok := params[id.Name]; ok {
								if _, known := wrappers[fd.Name.Name]; !known {
									wrappers[fd.Name.Name] = i
									changed = true
								}
							}
						}
					}
					return true
				})
			}
		}
	}
	var out []needle
	add := func(e ast.Expr) {
		for _, s := range fragments(e, consts, 0) {
			out = append(out, needle{text: s, pos: p.fset.Position(e.Pos())})
		}
	}
	for _, f := range p.files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				for _, arg := range searchedArgs(n, wrappers) {
					add(arg)
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isErrorCall(n.X) || isErrorCall(n.Y)) {
					add(n.X)
					add(n.Y)
				}
			}
			return true
		})
	}
	return out
}

// paramIndex maps fd's parameter names to their index among the call's
// arguments.
func paramIndex(fd *ast.FuncDecl) map[string]int {
	m := map[string]int{}
	i := 0
	for _, field := range fd.Type.Params.List {
		for _, name := range field.Names {
			m[name.Name] = i
			i++
		}
	}
	return m
}

// searchedArgs returns the arguments of call that it searches for: the
// needle of a strings, bytes or errwrap search, or the searched parameter
// of a wrapper.
func searchedArgs(call *ast.CallExpr, wrappers map[string]int) []ast.Expr {
	var name string
	switch fun := call.Fun.(type) {
	case *ast.SelectorExpr:
		name = fun.Sel.Name
		if pkg, ok := fun.X.(*ast.Ident); ok && (pkg.Name == "strings" || pkg.Name == "bytes" || pkg.Name == "errwrap") {
			if !searchFuncs[name] || len(call.Args) < 2 {
				return nil
			}
			if name == "EqualFold" {
				return call.Args[:2]
			}
			return call.Args[1:2]
		}
	case *ast.Ident:
		name = fun.Name
	default:
		return nil
	}
	if i, ok := wrappers[name]; ok && i < len(call.Args) {
		return call.Args[i : i+1]
	}
	return nil
}

// isErrorCall reports whether e is a call of an Error method.
func isErrorCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Error"
}

// verb matches a fmt verb, which splits a format into its fixed parts.
var verb = regexp.MustCompile(`%[-+# 0-9.*]*[a-zA-Z%]`)

// fragments returns the fixed texts e is made of: string literals, the
// package's own constants, the parts of a concatenation or of a
// fmt.Sprintf format. What another package names (pkg.Const) is shared,
// not copied, and gives nothing; so does what is only known at run time.
func fragments(e ast.Expr, consts map[string]ast.Expr, depth int) []string {
	if depth > 10 {
		return nil
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			if s, err := strconv.Unquote(e.Value); err == nil {
				return []string{s}
			}
		}
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return fragments(v, consts, depth+1)
		}
	case *ast.ParenExpr:
		return fragments(e.X, consts, depth+1)
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return append(fragments(e.X, consts, depth+1), fragments(e.Y, consts, depth+1)...)
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(e.Args) > 0 {
			var out []string
			for _, f := range fragments(e.Args[0], consts, depth+1) {
				out = append(out, verb.Split(f, -1)...)
			}
			return out
		}
	}
	return nil
}

// literal is a string literal of another package of the module.
type literal struct {
	text string
	pos  token.Position
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package")
		}
		dir = parent
	}
}

// literalsOfModule returns the string literals of the non-test Go files of
// every package of the module at root but this one, leaving out testdata
// directories and nested modules (e2e).
func literalsOfModule(t *testing.T, root string) []literal {
	t.Helper()
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []literal
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Dir(path) == self || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, filepath.ToSlash(rel), must(os.ReadFile(path)), 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if b, ok := n.(*ast.BasicLit); ok && b.Kind == token.STRING {
				if s, err := strconv.Unquote(b.Value); err == nil {
					out = append(out, literal{text: s, pos: fset.Position(b.Pos())})
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("found no literals in the module: the scan is broken")
	}
	return out
}

// writes reports whether lit writes text as its own words: text is in it
// outside quotation marks. A quoted occurrence is another's words, cited
// (the command's help quotes go-plugin's "This binary is a plugin").
func writes(lit, text string) bool {
	for i := 0; ; {
		j := strings.Index(lit[i:], text)
		if j < 0 {
			return false
		}
		at := i + j
		line := lit[strings.LastIndexByte(lit[:at], '\n')+1 : at]
		if strings.Count(line, `"`)%2 == 0 && strings.Count(line, "“") == strings.Count(line, "”") {
			return true
		}
		i = at + len(text)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// findings describes each needle that is in one of ours.
func findings(needles []needle, ours []literal) []string {
	var out []string
	for _, n := range needles {
		text := strings.TrimSpace(n.text)
		if len(text) < minNeedle || allowedNeedles[text] != "" {
			continue
		}
		for _, l := range ours {
			if writes(l.text, text) {
				out = append(out, n.pos.String()+": the check searches for "+strconv.Quote(n.text)+", which "+l.pos.String()+" writes ("+strconv.Quote(l.text)+
					"): decide by a type or an error value of that package, or, for another process's words, by a phrase named in internal/proctext")
				break
			}
		}
	}
	return out
}

// A literal that quotes a text cites it; one that holds it unquoted
// writes it.
func TestWrites(t *testing.T) {
	for _, c := range []struct {
		lit  string
		want bool
	}{
		{"servetest: the plugin does not multiplex: start another", true},
		{`go-plugin's generic "This binary is a plugin" fails`, false},
		{"a \"quoted\" line, then does not multiplex", true},
		{"first line \"open\nsecond: does not multiplex", true},
		{"Vault says “does not multiplex” here", false},
	} {
		text := "does not multiplex"
		if strings.Contains(c.lit, "This binary") {
			text = "This binary is a plugin"
		}
		if got := writes(c.lit, text); got != c.want {
			t.Errorf("writes(%q, %q) = %v, want %v", c.lit, text, got, c.want)
		}
	}
}
