package newplugin

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// The templates are the files of a new plugin, written as they will be:
// Go files are real Go (named *.go.tmpl, so that this module's build, vet
// and gofmt leave them alone), with [[.Field]] actions of text/template
// where the module differs. The delimiters are [[ ]] because Go's own
// templates ({{ }}, in the username template and in the workflow's
// ${{ }}) appear in the files. common/ is in every module, logical/ in
// a secrets engine's and an auth method's (both a logical.Backend), and
// secret/, auth/ and database/ in that type's. A path element NAME is the
// plugin's name, PACKAGE its package's (Package).
//
//go:embed all:templates
var templates embed.FS

// Types are the plugin types new makes, as -type names them: Vault's own
// names for them (vault plugin register TYPE).
var Types = []string{"secret", "auth", "database"}

// Params are what a new module is made from.
type Params struct {
	// Module is the module path, as given.
	Module string
	// Name is the plugin's name (PluginName): its command's directory,
	// its binary, its name in Vault's catalog and its mount path.
	Name string
	// Type is one of Types.
	Type string
}

// Package is the directory and package name of the plugin's code, apart
// from its main: "backend" for a secrets engine or auth method (a
// logical.Backend), "database" for a database plugin.
func (p Params) Package() string {
	if p.Type == "database" {
		return "database"
	}
	return "backend"
}

// Kind is what the plugin is, in words.
func (p Params) Kind() string {
	switch p.Type {
	case "auth":
		return "auth method"
	case "database":
		return "database plugin"
	}
	return "secrets engine"
}

// vnSuffix is a major-version suffix, which names no plugin.
var vnSuffix = regexp.MustCompile(`^v[0-9]+$`)

// PluginName is the plugin's name made from module: its last path
// element, or the one before it when the last is a major-version suffix
// (example.com/foo/v2 is foo), lower-cased, with each character other
// than a letter, digit, '.', '-' or '_' turned into '-', and '.' and '-'
// trimmed from both ends: Vault's catalog takes names that begin and end
// with a letter, digit or '_' and hold only those, '.' and '-' between.
func PluginName(module string) (string, error) {
	elems := strings.Split(module, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && vnSuffix.MatchString(last) {
		last = elems[len(elems)-2]
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, last)
	name = strings.Trim(name, ".-")
	if name == "" {
		return "", fmt.Errorf("MODULE %q: its last element makes no plugin name (letters, digits, '.', '-', '_')", module)
	}
	return name, nil
}

// checkModulePath asks the go command whether module is a valid module
// path, the way `go mod init` decides it, in a scratch directory: the
// rules (characters, elements, dots) are the toolchain's, and the go
// command that refuses is the one that would later fail.
func checkModulePath(module string) error {
	if strings.HasPrefix(module, "-") {
		return fmt.Errorf("MODULE %q: a module path does not begin with '-'", module)
	}
	tmp, err := os.MkdirTemp("", "vaultplugin-new-")
	if err != nil {
		return fmt.Errorf("checking MODULE: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "init", module)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if _, ok := err.(*exec.ExitError); !ok {
		return fmt.Errorf("running go mod init to check MODULE (new needs the go command on PATH): %w", err)
	}
	// The first line says what is wrong; a second one may suggest a
	// go mod init command, which is not what to run here.
	msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	msg = strings.TrimSuffix(strings.TrimPrefix(msg, "go: "), ":")
	return fmt.Errorf("MODULE %q: %s", module, msg)
}

// Render returns the new module's files by path (slash-separated,
// relative to its directory), made from the templates for p's type. It
// writes nothing; go.mod is not among them, since the go command makes
// it.
func Render(p Params) (map[string][]byte, error) {
	if p.Name == "" || p.Module == "" {
		return nil, fmt.Errorf("rendering: the module path and plugin name are required")
	}
	files := map[string][]byte{}
	roots := []string{"templates/common", "templates/" + p.Type}
	if p.Type != "database" {
		roots = append(roots, "templates/logical")
	}
	for _, root := range roots {
		err := fs.WalkDir(templates, root, func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			src, err := templates.ReadFile(name)
			if err != nil {
				return err
			}
			t, err := template.New(name).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("template %s: %w", name, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, p); err != nil {
				return fmt.Errorf("template %s: %w", name, err)
			}
			files[outPath(strings.TrimPrefix(name, root+"/"), p)] = b.Bytes()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("rendering the %s templates: %w", p.Type, err)
		}
	}
	return files, nil
}

// outPath is where a template's file goes: NAME elements become the
// plugin's name, PACKAGE elements its package's, and ".tmpl" is dropped.
func outPath(name string, p Params) string {
	elems := strings.Split(strings.TrimSuffix(name, ".tmpl"), "/")
	for i, e := range elems {
		switch e {
		case "NAME":
			elems[i] = p.Name
		case "PACKAGE":
			elems[i] = p.Package()
		}
	}
	return path.Join(elems...)
}

// sortedPaths returns the paths of files in order, for printing.
func sortedPaths(files map[string][]byte) []string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}
