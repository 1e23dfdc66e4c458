package release

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRootUser is the image's user: distroless's "nonroot" (65532), by
// number, since the image has no /etc/passwd to name it in.
const nonRootUser = "65532:65532"

// imageMeta is what every image of a release carries.
type imageMeta struct {
	binaryName string // the file at the image root
	version    string
	revision   string
	source     string
	created    time.Time
}

// labels are the OCI annotation keys the image config carries.
func (m imageMeta) labels() map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":   m.binaryName,
		"org.opencontainers.image.version": m.version,
		"org.opencontainers.image.created": m.created.Format(time.RFC3339),
	}
	if m.revision != "" {
		l["org.opencontainers.image.revision"] = m.revision
	}
	if m.source != "" {
		l["org.opencontainers.image.source"] = m.source
	}
	return l
}

// builtImage is one Linux architecture's image.
type builtImage struct {
	platform Platform
	image    v1.Image
	digest   v1.Hash // the manifest's
	config   v1.Hash // the config's: the image ID Docker shows, Vault's -sha256
	size     int64   // the compressed layer's
}

// variant is the architecture variant the image index states: arm64's
// "v8", which OpenBao asks for (containerd's default platform on arm64 is
// linux/arm64/v8, and go-containerregistry matches a variant exactly).
func variant(arch string) string {
	if arch == "arm64" {
		return "v8"
	}
	return ""
}

// layerTar is the image's only layer: the binary at the root, where
// OpenBao looks for binary_name, and a /tmp for the plugin's temporary
// files; owned by root, dated created, so that two releases of one commit
// make the same bytes.
func layerTar(bin, binaryName string, created time.Time) ([]byte, error) {
	f, err := os.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: created, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: binaryName, Mode: 0o755, Size: fi.Size(), ModTime: created, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// newImage makes the image of the binary built for p.
func newImage(bin string, p Platform, m imageMeta) (*builtImage, error) {
	raw, err := layerTar(bin, m.binaryName, m.created)
	if err != nil {
		return nil, fmt.Errorf("the %s image's layer: %w", p, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("the %s image's layer: %w", p, err)
	}
	created := v1.Time{Time: m.created}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: created, CreatedBy: "vaultplugin release", Comment: m.binaryName + " " + m.version}})
	if err != nil {
		return nil, fmt.Errorf("the %s image: %w", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("the %s image's config: %w", p, err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Arch, variant(p.Arch)
	cf.Config.Entrypoint = []string{"/" + m.binaryName}
	cf.Config.User = nonRootUser
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = m.labels()
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("the %s image's config: %w", p, err)
	}
	img = mutate.Annotations(img, m.labels()).(v1.Image)
	bi := &builtImage{platform: p, image: img}
	if bi.digest, err = img.Digest(); err != nil {
		return nil, fmt.Errorf("the %s image's digest: %w", p, err)
	}
	if bi.config, err = img.ConfigName(); err != nil {
		return nil, fmt.Errorf("the %s image's config digest: %w", p, err)
	}
	if bi.size, err = layer.Size(); err != nil {
		return nil, fmt.Errorf("the %s image's layer size: %w", p, err)
	}
	return bi, nil
}

// newIndex makes the image index of the per-architecture images.
func newIndex(imgs []*builtImage, m imageMeta) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, bi := range imgs {
		adds = append(adds, mutate.IndexAddendum{Add: bi.image, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: bi.platform.OS, Architecture: bi.platform.Arch, Variant: variant(bi.platform.Arch)},
		}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return mutate.Annotations(idx, m.labels()).(v1.ImageIndex), nil
}

// writeLayout writes the index and its images as an OCI image layout in
// dir, the index named by the version (org.opencontainers.image.ref.name),
// so that `skopeo copy oci:DIR:VERSION …` or `crane push DIR …` publish it.
func writeLayout(dir string, idx v1.ImageIndex, version string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version})); err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	return nil
}

// push pushes the index to ref with the credentials of the Docker config
// and credential helpers (authn.DefaultKeychain), as docker push would.
func push(ctx context.Context, ref name.Reference, idx v1.ImageIndex) error {
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// pushRef parses -push REF: a repository, whose tag is the version (OpenBao
// pulls IMAGE:VERSION); a tag that is not the version is a mistake.
func pushRef(ref, version string) (name.Repository, error) {
	r, err := name.ParseReference(ref, name.WithDefaultTag(""))
	if err != nil {
		return name.Repository{}, fmt.Errorf("-push %q: %w", ref, err)
	}
	switch t := r.(type) {
	case name.Digest:
		return name.Repository{}, fmt.Errorf("-push %q: give a repository, not a digest", ref)
	case name.Tag:
		if t.TagStr() != "" && t.TagStr() != version {
			return name.Repository{}, fmt.Errorf("-push %q: the tag must be the version %s (OpenBao pulls IMAGE:VERSION), or none", ref, version)
		}
		return t.Context(), nil
	}
	return r.Context(), nil
}
