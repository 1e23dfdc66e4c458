package release

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The images are the same bytes from run to run, and OpenBao finds the
// binary for its platform in them: pushed to a registry on 127.0.0.1 (plain
// HTTP) and pulled as OpenBao 2.6's downloader does (helper/pluginutil/oci:
// remote.Image with the platform containerd names, mutate.Extract, the
// file binary_name at the root).
func TestImagesAsOpenBaoPullsThem(t *testing.T) {
	dir := t.TempDir()
	bins := map[string][]byte{"amd64": []byte("amd64 binary\x00"), "arm64": []byte("arm64 binary\x01")}
	created := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	meta := imageMeta{binaryName: "vault-plugin-secrets-x", version: "v1.2.3", revision: "abc123", source: "https://example.com/x", created: created}
	makeIndex := func() v1.ImageIndex {
		var imgs []*builtImage
		for _, arch := range []string{"amd64", "arm64"} {
			bin := filepath.Join(dir, arch)
			if err := os.WriteFile(bin, bins[arch], 0o755); err != nil {
				t.Fatal(err)
			}
			img, err := newImage(bin, Platform{"linux", arch}, meta)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
		idx, err := newIndex(imgs, meta)
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	first, second := filepath.Join(dir, "oci1"), filepath.Join(dir, "oci2")
	idx := makeIndex()
	if err := writeLayout(first, idx, meta.version); err != nil {
		t.Fatal(err)
	}
	if err := writeLayout(second, makeIndex(), meta.version); err != nil {
		t.Fatal(err)
	}
	if a, b := treeOf(t, first), treeOf(t, second); a != b {
		t.Errorf("two layouts of the same binaries differ:\n%s\n---\n%s", a, b)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	image := strings.TrimPrefix(srv.URL, "http://") + "/vault-plugin-secrets-x"
	repo, err := pushRef(image, meta.version)
	if err != nil {
		t.Fatal(err)
	}
	if err := push(context.Background(), repo.Tag(meta.version), idx); err != nil {
		t.Fatal(err)
	}
	for arch, want := range bins {
		// OpenBao: ref := name.ParseReference(image + ":" + version);
		// its platform is containerd's platforms.DefaultString().
		ref, err := name.ParseReference(image + ":" + meta.version)
		if err != nil {
			t.Fatal(err)
		}
		platform := v1.Platform{OS: "linux", Architecture: arch, Variant: variant(arch)}
		img, err := remote.Image(ref, remote.WithPlatform(platform))
		if err != nil {
			t.Fatalf("pulling %s for %s: %v", ref, arch, err)
		}
		files := extract(t, img)
		if got := files[meta.binaryName]; !bytes.Equal(got, want) {
			t.Errorf("%s: /%s is %q, want %q (files: %d)", arch, meta.binaryName, got, want, len(files))
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if strings.Join(c.Entrypoint, " ") != "/"+meta.binaryName || c.User != nonRootUser || cf.Architecture != arch || cf.OS != "linux" {
			t.Errorf("%s: config entrypoint %q user %q platform %s/%s", arch, c.Entrypoint, c.User, cf.OS, cf.Architecture)
		}
		if !cf.Created.Time.Equal(created) || len(cf.History) != 1 || !cf.History[0].Created.Time.Equal(created) {
			t.Errorf("%s: created %s, history %+v: want every date %s", arch, cf.Created, cf.History, created)
		}
		for k, v := range map[string]string{"org.opencontainers.image.source": meta.source, "org.opencontainers.image.version": "v1.2.3", "org.opencontainers.image.revision": "abc123"} {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", arch, k, c.Labels[k], v)
			}
		}
	}
}

// extract returns the files of the image's filesystem, as OpenBao reads
// it.
func extract(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeReg {
			files[strings.TrimPrefix(h.Name, "/")] = b
		}
	}
}

// treeOf lists every file under dir with its content.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		c, err := os.ReadFile(path)
		b.WriteString(strings.TrimPrefix(path, dir) + " " + string(c) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPushRef(t *testing.T) {
	for _, c := range []struct{ ref, want, err string }{
		{"127.0.0.1:5000/plugin", "127.0.0.1:5000/plugin", ""},
		{"127.0.0.1:5000/plugin:v1.2.3", "127.0.0.1:5000/plugin", ""},
		{"ghcr.io/acme/plugin", "ghcr.io/acme/plugin", ""},
		{"ghcr.io/acme/plugin:latest", "", "the tag must be the version v1.2.3"},
		{"ghcr.io/acme/plugin@sha256:" + strings.Repeat("0", 64), "", "not a digest"},
		{"UPPER/case", "", "-push"},
	} {
		repo, err := pushRef(c.ref, "v1.2.3")
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("pushRef(%q) = %v, want an error with %q", c.ref, err, c.err)
		case c.err == "" && (err != nil || repo.Name() != c.want):
			t.Errorf("pushRef(%q) = %v, %v; want %s", c.ref, repo, err, c.want)
		}
	}
}

func TestReleaseVersion(t *testing.T) {
	for _, c := range []struct {
		in, want   string
		allow      bool
		stamped    bool
		errContain string
	}{
		{"v1.2.3", "v1.2.3", false, true, ""},
		{"1.2.3-rc.1", "v1.2.3-rc.1", false, true, ""},
		{"v1.2", "", false, false, "not a semantic version MAJOR.MINOR.PATCH"},
		{"nightly", "", false, false, "give -allow-nonsemver"},
		{"nightly-2026.12.05", "nightly-2026.12.05", true, false, ""},
		{"v1.2.3", "v1.2.3", true, true, ""},
		{"a b", "", true, false, "cannot name files"},
		{"", "", false, false, "-version is required"},
	} {
		got, stamped, err := releaseVersion(c.in, c.allow)
		if c.errContain != "" {
			if err == nil || !strings.Contains(err.Error(), c.errContain) {
				t.Errorf("releaseVersion(%q, %v) = %v, want an error with %q", c.in, c.allow, err, c.errContain)
			}
			continue
		}
		if err != nil || got != c.want || stamped != c.stamped {
			t.Errorf("releaseVersion(%q, %v) = %q, %v, %v; want %q, %v", c.in, c.allow, got, stamped, err, c.want, c.stamped)
		}
	}
}
