// Package release is `vaultplugin release`: it builds a plugin's main
// package for every target, reproducibly and with the version stamped,
// checks each binary, and writes the binaries, SHA256SUMS, OCI images and
// the registration for Vault and OpenBao, made from what was built. The
// command's documentation describes the flags, the files and the JSON.
//
// The library's own packages never import this one, nor its image
// library (serve's deps_test.go proves it): a plugin binary links none
// of it.
package release

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/check"
	"github.com/plugkit/vaultplugin/cmd/vaultplugin/internal/cli"
	"github.com/plugkit/vaultplugin/internal/filehash"
	"github.com/plugkit/vaultplugin/internal/server"
)

// Flags defines release's flags on fs and returns what runs the release
// once they are parsed. The flags' help is the command's help text, in
// package main; fs's usage strings stay empty.
func Flags(fs *flag.FlagSet) cli.Run {
	o := &Options{Platforms: platformList(DefaultPlatforms), Strip: true}
	fs.StringVar(&o.Version, "version", "", "")
	fs.StringVar(&o.Out, "o", "", "")
	fs.StringVar(&o.Platforms, "platforms", o.Platforms, "")
	fs.StringVar(&o.Name, "name", "", "")
	fs.StringVar(&o.Type, "type", "", "")
	fs.StringVar(&o.Push, "push", "", "")
	fs.StringVar(&o.Image, "image", "", "")
	fs.StringVar(&o.Source, "source", "", "")
	fs.StringVar(&o.Tags, "tags", "", "")
	fs.BoolVar(&o.Strip, "strip", o.Strip, "")
	fs.BoolVar(&o.AllowDirty, "allow-dirty", false, "")
	fs.BoolVar(&o.AllowNonSemver, "allow-nonsemver", false, "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "")
	fs.BoolVar(&o.JSON, "json", false, "")
	return func(args []string, stdout, stderr io.Writer) error {
		switch len(args) {
		case 0:
			o.Package = "."
		case 1:
			o.Package = args[0]
		default:
			return cli.Usagef("one PACKAGE at a time, got %s", strings.Join(args, " "))
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		s, err := Run(ctx, *o, stderr)
		if err != nil {
			return err
		}
		if o.JSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			return enc.Encode(s)
		}
		_, err = io.WriteString(stdout, s.text())
		return err
	}
}

// Options are release's flags.
type Options struct {
	Package        string
	Version        string
	Out            string
	Platforms      string // OS/ARCH, comma-separated
	Name           string // the catalog name; the binary's name when ""
	Type           string // secret, auth, database; what the binary says when ""
	Push           string // a repository to push the images to
	Image          string // the images' repository for the registration, when not pushed
	Source         string // the org.opencontainers.image.source label
	Tags           string
	Strip          bool
	AllowDirty     bool
	AllowNonSemver bool
	DryRun         bool
	JSON           bool
}

// SummarySchema is the version of Summary's JSON fields.
const SummarySchema = 1

// Summary is what a release produced (or, with -dry-run, would produce):
// release.json in the output directory, and what -json prints. Its JSON
// form is the schema the command's documentation lists.
type Summary struct {
	Schema int  `json:"schema"`
	DryRun bool `json:"dry_run"`
	// Name is the catalog name the registration uses.
	Name string `json:"name"`
	// BinaryName is the main package's name: the binaries' file names
	// begin with it, and it is the file at each image's root.
	BinaryName string `json:"binary_name"`
	Type       string `json:"type"`
	Version    string `json:"version"`
	// Stamped is true when the version is stamped into the binaries (a
	// semantic version); false with -allow-nonsemver, where it only
	// names the files and images.
	Stamped    bool     `json:"stamped"`
	Package    string   `json:"package"`
	Module     string   `json:"module"`
	Revision   string   `json:"revision,omitempty"`
	Dirty      bool     `json:"dirty"`
	Created    string   `json:"created,omitempty"`
	GoVersion  string   `json:"go_version,omitempty"`
	BuildFlags []string `json:"build_flags"`
	Output     string   `json:"output"`
	Binaries   []Binary `json:"binaries"`
	// SHA256SUMS is the checksum file's name in Output.
	SHA256SUMS   string       `json:"sha256sums"`
	Images       *Images      `json:"images,omitempty"`
	Registration Registration `json:"registration"`
	// Files are every file written into Output, relative to it.
	Files []string `json:"files"`
	// Millis is how long the release took.
	Millis int64 `json:"duration_ms"`
}

// Binary is one built binary.
type Binary struct {
	File   string `json:"file"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Version is the version read back from the binary's build info.
	Version string `json:"version,omitempty"`
	// Checks are check's results on it.
	Checks      []check.Result `json:"checks,omitempty"`
	BuildMillis int64          `json:"build_ms,omitempty"`
}

// Images are the OCI images of the Linux binaries.
type Images struct {
	// Layout is the OCI image layout's directory in Output.
	Layout string `json:"layout"`
	// Image is the repository the registration names ("" when neither
	// -push nor -image gave one); Tag is the version.
	Image string `json:"image,omitempty"`
	Tag   string `json:"tag"`
	// Index is the image index's digest.
	Index string `json:"index_digest,omitempty"`
	// Pushed is IMAGE:TAG@INDEX once pushed.
	Pushed    string     `json:"pushed,omitempty"`
	Manifests []Manifest `json:"manifests"`
}

// Manifest is one architecture's image.
type Manifest struct {
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Variant string `json:"variant,omitempty"`
	Digest  string `json:"digest,omitempty"`
	// ConfigDigest is the image ID, Vault's container -sha256.
	ConfigDigest string `json:"config_digest,omitempty"`
	// LayerSize is the compressed layer's size: what a node downloads.
	LayerSize int64 `json:"layer_size,omitempty"`
	// BinarySHA256 is the sha256 of the binary at the image's root,
	// OpenBao's sha256sum.
	BinarySHA256 string `json:"binary_sha256,omitempty"`
}

// Output files.
const (
	sumsFile         = "SHA256SUMS"
	registrationFile = "registration.txt"
	summaryFile      = "release.json"
)

func openBaoFile(arch string) string { return "openbao_linux_" + arch + ".hcl" }

// fileName is a binary's name: NAME_VERSION_OS_ARCH, .exe on Windows.
func fileName(binaryName, version string, p Platform) string {
	n := fmt.Sprintf("%s_%s_%s_%s", binaryName, version, p.OS, p.Arch)
	if p.OS == "windows" {
		n += ".exe"
	}
	return n
}

// fullSemver is MAJOR.MINOR.PATCH with an optional pre-release and build,
// after an optional v: what a release version must be.
var fullSemver = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+].*)?$`)

// releaseVersion validates the version given: a full semantic version,
// normalised as Vault stores it ("v" + canonical), or with allowOther
// any word that can name files and an image tag, stamped nowhere.
func releaseVersion(v string, allowOther bool) (version string, stamped bool, err error) {
	if v == "" {
		return "", false, cli.Usagef("-version is required: the version to stamp, e.g. -version v1.2.3")
	}
	norm, nerr := server.NormalizeVersion(v)
	if nerr == nil && fullSemver.MatchString(v) {
		return norm, true, nil
	}
	if !allowOther {
		return "", false, cli.Usagef("-version %q is not a semantic version MAJOR.MINOR.PATCH (e.g. v1.2.3, v1.2.3-rc.1): Vault's catalog and OpenBao compare the version a plugin reports with the registered one, and accept only those; give -allow-nonsemver to release under another name, unstamped", v)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`).MatchString(v) {
		return "", false, cli.Usagef("-version %q cannot name files and an image tag: use letters, digits, '.', '-' and '_'", v)
	}
	return v, false, nil
}

// Run releases as o says, writing progress lines to progress, and returns
// what it produced. Nothing is written into o.Out unless every binary
// was built and passed its checks (and, with -push, the images were
// pushed).
func Run(ctx context.Context, o Options, progress io.Writer) (*Summary, error) {
	start := time.Now()
	version, stamped, err := releaseVersion(o.Version, o.AllowNonSemver)
	if err != nil {
		return nil, err
	}
	if o.Out == "" {
		return nil, cli.Usagef("-o DIR is required: the directory to write the release into")
	}
	plats, err := parsePlatforms(o.Platforms)
	if err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	switch o.Type {
	case "", "secret", "auth", "database":
	default:
		return nil, cli.Usagef("-type %q: want secret, auth or database", o.Type)
	}
	image := o.Image
	if o.Push != "" {
		if _, err := pushRef(o.Push, version); err != nil {
			return nil, &cli.UsageError{Err: err}
		}
		pushed := strings.TrimSuffix(o.Push, ":"+version)
		if image != "" && image != pushed {
			return nil, cli.Usagef("-image %s and -push %s name different images", image, o.Push)
		}
		image = pushed
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", o.Out, err)
	}
	if err := emptyDir(out); err != nil {
		return nil, err
	}

	pkg, err := goList(ctx, o.Package)
	if err != nil {
		return nil, err
	}
	git, err := readGit(ctx, pkg.moduleDir)
	if err != nil {
		return nil, err
	}
	switch {
	case !git.inGit && !o.AllowDirty:
		return nil, fmt.Errorf("%s is not in a git checkout, so no commit says what this release was built from and no one can rebuild it: release from a checkout, or give -allow-dirty", pkg.moduleDir)
	case len(git.changes) > 0 && !o.AllowDirty:
		return nil, fmt.Errorf("the checkout has uncommitted changes (%s), so its commit does not say what this release was built from and a rebuild would differ: commit or stash them, or give -allow-dirty", firstOf(git.changes, 3))
	}

	s := &Summary{Schema: SummarySchema, DryRun: o.DryRun, Name: o.Name, BinaryName: pkg.name, Type: o.Type,
		Version: version, Stamped: stamped, Package: pkg.importPath, Module: pkg.module, Output: out,
		SHA256SUMS: sumsFile, Dirty: len(git.changes) > 0}
	if s.Name == "" {
		s.Name = pkg.name
	}
	stampVersion := version
	if !stamped {
		stampVersion = ""
	}
	flags := buildFlags(stampVersion, o.Strip, o.Tags)
	s.BuildFlags = append([]string{"CGO_ENABLED=0"}, flags...)
	for _, p := range plats {
		s.Binaries = append(s.Binaries, Binary{File: fileName(pkg.name, version, p), OS: p.OS, Arch: p.Arch})
	}
	var linux []Platform
	for _, p := range plats {
		if p.OS == "linux" {
			linux = append(linux, p)
		}
	}
	if len(linux) > 0 {
		s.Images = &Images{Layout: "oci", Image: image, Tag: version}
		for _, p := range linux {
			s.Images.Manifests = append(s.Images.Manifests, Manifest{OS: p.OS, Arch: p.Arch, Variant: variant(p.Arch)})
		}
	}
	if o.DryRun {
		s.Files = plannedFiles(s)
		s.Millis = time.Since(start).Milliseconds()
		return s, nil
	}

	// Everything is made in a directory beside out, and renamed into
	// place only once it all worked.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(out), err)
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory beside %s: %w", out, err)
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil { // MkdirTemp's is 0700
		return nil, fmt.Errorf("creating a directory beside %s: %w", out, err)
	}

	if err := buildAll(ctx, s, stage, plats, flags, o.Package, progress); err != nil {
		return nil, err
	}
	if err := checkAll(ctx, s, stage, stamped, git, progress); err != nil {
		return nil, err
	}
	if s.Images != nil {
		if err := makeImages(ctx, s, stage, o, progress); err != nil {
			return nil, err
		}
	}
	s.Registration = registration(s)
	if err := writeFiles(s, stage); err != nil {
		return nil, err
	}
	s.Files = plannedFiles(s)
	s.Millis = time.Since(start).Milliseconds()
	if err := writeJSON(filepath.Join(stage, summaryFile), s); err != nil {
		return nil, err
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("replacing the empty %s: %w", out, err)
	}
	if err := os.Rename(stage, out); err != nil {
		return nil, fmt.Errorf("moving the release into %s: %w", out, err)
	}
	return s, nil
}

// emptyDir refuses an output directory that holds anything: a release
// writes into a fresh one, so that no file of another is mistaken for
// this release's.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("-o %s: %w", dir, err)
	case len(entries) > 0:
		return cli.Usagef("-o %s is not empty: a release writes into a new or empty directory, so that no older file passes for this release's", dir)
	}
	return nil
}

func firstOf(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, "; ")
	}
	return strings.Join(s[:n], "; ") + fmt.Sprintf("; and %d more", len(s)-n)
}

// buildAll builds every target into stage, two at a time: on a couple
// of cores one build links while the other compiles.
func buildAll(ctx context.Context, s *Summary, stage string, plats []Platform, flags []string, pkg string, progress io.Writer) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs *multierror.Error
		sem  = make(chan struct{}, min(2, runtime.NumCPU()))
	)
	for i, p := range plats {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			took, err := build(ctx, pkg, filepath.Join(stage, s.Binaries[i].File), p, flags)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = multierror.Append(errs, err)
				return
			}
			s.Binaries[i].BuildMillis = took.Milliseconds()
			fmt.Fprintf(progress, "built   %-14s %s (%s)\n", p, s.Binaries[i].File, took.Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

// checkAll hashes every binary, reads its version back from its build
// info, and runs check's checks on it; the binary this machine runs tells
// the plugin's type and the version it reports to the host. Any failure
// refuses the release, naming the binary and the check.
func checkAll(ctx context.Context, s *Summary, stage string, stamped bool, git gitState, progress io.Writer) error {
	var errs *multierror.Error
	ranType := ""
	for i := range s.Binaries {
		b := &s.Binaries[i]
		path := filepath.Join(stage, b.File)
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		b.Size = fi.Size()
		sum, err := filehash.SHA256(path)
		if err != nil {
			return err
		}
		b.SHA256 = hex.EncodeToString(sum)
		st, err := readStamp(path)
		if err != nil {
			return err
		}
		b.Version = st.version
		if stamped && st.version != s.Version {
			errs = multierror.Append(errs, fmt.Errorf("%s is stamped with version %q, not %s", b.File, st.version, s.Version))
		}
		if i == 0 {
			s.GoVersion = st.goVersion
			commit := st.time
			s.Revision, s.Dirty = st.revision, st.modified
			if s.Revision == "" {
				s.Revision, s.Dirty, commit = git.revision, len(git.changes) > 0, git.time
			}
			s.Created = createdAt(commit).Format(time.RFC3339)
		}
		built, err := check.CheckBuilt(ctx, path, b.OS, b.Arch)
		if err != nil {
			return fmt.Errorf("checking %s: %w", b.File, err)
		}
		b.Checks = built.Results
		var failed []string
		for _, r := range built.Results {
			// check only warns about a dynamically linked binary, which
			// Vault serves on this machine; a release is for every
			// machine, and it does not start on an Alpine-based image.
			if r.Status == check.Fail || r.Status == check.Warn && r.ID == check.IDStatic {
				failed = append(failed, fmt.Sprintf("%s: %s (fix: %s)", r.ID, r.Detail, r.Fix))
			}
		}
		if len(failed) > 0 {
			errs = multierror.Append(errs, fmt.Errorf("%s fails the %s check", b.File, strings.Join(failed, "; and the ")))
			continue
		}
		how := "header and linking"
		if built.Ran {
			how = fmt.Sprintf("started as Vault does: a %s plugin reporting %s", built.Type, orNone(built.Version))
			ranType = built.Type
			if stamped && built.Version != s.Version {
				errs = multierror.Append(errs, fmt.Errorf("%s reports version %s to the host, not %s: a serve.WithVersion in its main outranks the release's stamp; remove it, or release that version", b.File, orNone(built.Version), s.Version))
			}
		}
		fmt.Fprintf(progress, "checked %-14s %s (%s)\n", b.OS+"/"+b.Arch, b.File, how)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return fmt.Errorf("refusing to publish: %w", err)
	}
	switch {
	case ranType != "" && s.Type != "" && ranType != s.Type:
		return fmt.Errorf("-type %s, but the plugin says it is a %s plugin", s.Type, ranType)
	case ranType != "":
		s.Type = ranType
	case s.Type == "":
		return cli.Usagef("none of the binaries runs on this machine (%s/%s), so none could say the plugin's type: give -type secret, auth or database", runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

func orNone(v string) string {
	if v == "" {
		return "no version"
	}
	return v
}

// createdAt is the date every image carries: the commit's (vcs.time),
// else SOURCE_DATE_EPOCH's, else the Unix epoch; never the clock's, so
// that two releases of one commit make the same images.
func createdAt(commit time.Time) time.Time {
	if !commit.IsZero() {
		return commit
	}
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(sec, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

// makeImages builds the Linux binaries' images and their index, writes
// them as an OCI layout into stage, and pushes them when asked.
func makeImages(ctx context.Context, s *Summary, stage string, o Options, progress io.Writer) error {
	created, err := time.Parse(time.RFC3339, s.Created)
	if err != nil {
		return err
	}
	source := o.Source
	if source == "" && strings.Contains(strings.Split(s.Module, "/")[0], ".") {
		source = "https://" + s.Module
	}
	meta := imageMeta{binaryName: s.BinaryName, version: s.Version, revision: s.Revision, source: source, created: created}
	var imgs []*builtImage
	for i := range s.Images.Manifests {
		m := &s.Images.Manifests[i]
		var bin *Binary
		for j := range s.Binaries {
			if s.Binaries[j].OS == m.OS && s.Binaries[j].Arch == m.Arch {
				bin = &s.Binaries[j]
			}
		}
		img, err := newImage(filepath.Join(stage, bin.File), Platform{m.OS, m.Arch}, meta)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
		m.Digest, m.ConfigDigest, m.LayerSize, m.BinarySHA256 = img.digest.String(), img.config.String(), img.size, bin.SHA256
		fmt.Fprintf(progress, "image   %-14s %s (layer %s)\n", m.OS+"/"+m.Arch, short(m.Digest), mib(m.LayerSize))
	}
	idx, err := newIndex(imgs, meta)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("the image index's digest: %w", err)
	}
	s.Images.Index = d.String()
	if err := writeLayout(filepath.Join(stage, s.Images.Layout), idx, s.Version); err != nil {
		return err
	}
	if o.Push == "" {
		return nil
	}
	repo, err := pushRef(o.Push, s.Version)
	if err != nil {
		return err
	}
	if err := push(ctx, repo.Tag(s.Version), idx); err != nil {
		return err
	}
	s.Images.Pushed = s.Images.Image + ":" + s.Version + "@" + s.Images.Index
	fmt.Fprintf(progress, "pushed  %s\n", s.Images.Pushed)
	return nil
}

// registration makes the registration from the summary's binaries and
// images.
func registration(s *Summary) Registration {
	var r Registration
	ver := ""
	if s.Stamped {
		ver = s.Version
	}
	for _, b := range s.Binaries {
		r.Vault = append(r.Vault, VaultLine{OS: b.OS, Arch: b.Arch, Command: vaultLine(s.Type, s.Name, ver, b.File, b.SHA256)})
	}
	if s.Images == nil || s.Images.Image == "" || !s.Stamped {
		return r
	}
	for _, m := range s.Images.Manifests {
		r.OpenBao = append(r.OpenBao, OpenBaoBlock{Arch: m.Arch, File: openBaoFile(m.Arch),
			Block: openBaoBlock(s.Type, s.Name, s.Images.Image, s.Version, s.BinaryName, m.BinarySHA256)})
		r.VaultContainer = append(r.VaultContainer, VaultLine{OS: m.OS, Arch: m.Arch,
			Command: containerLine(s.Type, s.Name, s.Images.Image, s.Version, strings.TrimPrefix(m.ConfigDigest, "sha256:"))})
	}
	r.VaultRuntime = runtimeLine()
	return r
}

// writeFiles writes SHA256SUMS, the registration and the OpenBao blocks.
func writeFiles(s *Summary, dir string) error {
	var sums strings.Builder
	for _, b := range s.Binaries {
		// Two spaces: sha256sum's text mode, which -c reads.
		fmt.Fprintf(&sums, "%s  %s\n", b.SHA256, b.File)
	}
	files := map[string]string{sumsFile: sums.String(), registrationFile: s.Registration.text(s)}
	for _, o := range s.Registration.OpenBao {
		files[o.File] = o.Block
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}

// plannedFiles lists what the release writes into the output directory.
func plannedFiles(s *Summary) []string {
	var fs []string
	for _, b := range s.Binaries {
		fs = append(fs, b.File)
	}
	fs = append(fs, sumsFile, registrationFile, summaryFile)
	if s.Images != nil {
		fs = append(fs, s.Images.Layout+"/")
		if s.Images.Image != "" && s.Stamped {
			for _, m := range s.Images.Manifests {
				fs = append(fs, openBaoFile(m.Arch))
			}
		}
	}
	sort.Strings(fs)
	return fs
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// text is the summary for a person: a table of what was built, or with
// -dry-run of what would be.
func (s *Summary) text() string {
	var b strings.Builder
	if s.DryRun {
		fmt.Fprintf(&b, "vaultplugin release -dry-run: would build %s (%s) %s for %d platforms with\n", s.BinaryName, s.Package, s.Version, len(s.Binaries))
		fmt.Fprintf(&b, "  %s go build %s\n", s.BuildFlags[0], strings.Join(s.BuildFlags[1:], " "))
		fmt.Fprintf(&b, "and write into %s:\n", s.Output)
		for _, f := range s.Files {
			fmt.Fprintf(&b, "  %s\n", f)
		}
		if s.Images != nil {
			var ps []string
			for _, m := range s.Images.Manifests {
				ps = append(ps, m.OS+"/"+m.Arch)
			}
			fmt.Fprintf(&b, "with OCI images for %s and their index", strings.Join(ps, ", "))
			if s.Images.Image != "" {
				fmt.Fprintf(&b, ", named %s:%s", s.Images.Image, s.Version)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "released %s %s (%s plugin %q) into %s in %s\n\n", s.BinaryName, s.Version, s.Type, s.Name, s.Output,
		(time.Duration(s.Millis) * time.Millisecond).Round(100*time.Millisecond))
	w := len("FILE")
	for _, bin := range s.Binaries {
		w = max(w, len(bin.File))
	}
	fmt.Fprintf(&b, "%-*s  %-13s  %10s  %s\n", w, "FILE", "OS/ARCH", "SIZE", "SHA256")
	for _, bin := range s.Binaries {
		fmt.Fprintf(&b, "%-*s  %-13s  %10s  %s\n", w, bin.File, bin.OS+"/"+bin.Arch, mib(bin.Size), short(bin.SHA256))
	}
	if s.Images != nil {
		for _, m := range s.Images.Manifests {
			fmt.Fprintf(&b, "%-*s  %-13s  %10s  %s\n", w, s.Images.Layout+"/ (image)", m.OS+"/"+m.Arch, mib(m.LayerSize), short(m.Digest))
		}
		fmt.Fprintf(&b, "%-*s  %-13s  %10s  %s\n", w, s.Images.Layout+"/ (index)", "", "", short(s.Images.Index))
		if s.Images.Pushed != "" {
			fmt.Fprintf(&b, "\npushed %s\n", s.Images.Pushed)
		}
	}
	fmt.Fprintf(&b, "\n%s has the register lines", registrationFile)
	if len(s.Registration.OpenBao) > 0 {
		b.WriteString(" and the OpenBao plugin blocks")
	} else if s.Images != nil && s.Images.Image == "" {
		b.WriteString("; give -push REF or -image REPO for the OpenBao and container registration")
	}
	b.WriteString(". For linux/amd64:\n")
	for _, l := range s.Registration.Vault {
		if l.OS == "linux" && l.Arch == "amd64" {
			fmt.Fprintf(&b, "  %s\n", l.Command)
		}
	}
	return b.String()
}
