module github.com/plugkit/vaultplugin

go 1.24.0

require (
	github.com/go-jose/go-jose/v4 v4.0.5
	github.com/google/go-containerregistry v0.20.2
	github.com/hashicorp/errwrap v1.1.0
	github.com/hashicorp/go-hclog v1.6.3
	github.com/hashicorp/go-multierror v1.1.1
	github.com/hashicorp/go-plugin v1.6.0
	github.com/hashicorp/go-secure-stdlib/mlock v0.1.1
	github.com/hashicorp/go-version v1.3.0
	github.com/hashicorp/vault/api v1.5.0
	github.com/hashicorp/vault/sdk v0.6.2
	go.uber.org/goleak v1.1.10
	golang.org/x/crypto v0.36.0
	golang.org/x/sys v0.31.0
	google.golang.org/grpc v1.64.1
)

// Security floors. vault/sdk, vault/api and go-plugin stay at the oldest
// releases the library works with, so that no existing plugin is forced to
// upgrade them; the modules below are raised to releases with known security
// fixes, which none of those three needs to change for. A module that
// requires only this library links at least these (TestNewModuleFloor):
//
//   - google.golang.org/grpc v1.64.1: HTTP/2 rapid reset, CVE-2023-44487
//     (fixed in v1.56.3/v1.57.1/v1.58.3), and gRPC metadata printed into
//     logs, GHSA-xr7q-jx4m-x55m (fixed in v1.64.1).
//   - golang.org/x/net v0.38.0: HTTP/2 rapid reset, CVE-2023-39325 and
//     CVE-2023-44487 (v0.17.0); HTTP/2 CONTINUATION flood, CVE-2023-45288
//     (v0.23.0); html tokenizer, CVE-2024-45338 (v0.33.0) and CVE-2025-22872
//     (v0.38.0); proxy bypass with IPv6 zone IDs, CVE-2025-22870 (v0.36.0).
//   - google.golang.org/protobuf v1.33.0: protojson.Unmarshal infinite loop,
//     CVE-2024-24786.
//   - github.com/hashicorp/go-retryablehttp v0.7.7: URL credentials written
//     to logs, CVE-2024-6104. Not imported directly: vault/api's client uses
//     it for the legacy TLS path's unwrap call, and before v0.7.6 it also
//     retried a certificate error (Go 1.20+ wraps x509.UnknownAuthorityError
//     in tls.CertificateVerificationError), so a plugin that does not trust
//     Vault's certificate ended at the unwrap timeout with "context deadline
//     exceeded" (serve's TestUnwrapDeadline/untrusted_certificate).
//   - golang.org/x/crypto v0.36.0: SSH Terrapin, CVE-2023-48795 (v0.17.0);
//     ssh server auth misuse, CVE-2024-45337 (v0.31.0); ssh DoS,
//     CVE-2025-22869 (v0.35.0). x/net v0.38.0 requires v0.36.0.
//   - github.com/go-jose/go-jose/v4 v4.0.5: decompression bomb,
//     CVE-2024-28180 (v4.0.1); excessive memory in compact parsing,
//     CVE-2025-27144 (v4.0.5).
//
// Not fixable here: vault/api before v1.9.2 links gopkg.in/square/go-jose.v2,
// which has no fixed release for CVE-2024-28180; `go get
// github.com/hashicorp/vault/api@latest` drops it.
require (
	github.com/hashicorp/go-retryablehttp v0.7.7 // indirect
	golang.org/x/net v0.38.0 // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)

require (
	github.com/armon/go-metrics v0.3.9 // indirect
	github.com/armon/go-radix v1.0.0 // indirect
	github.com/cenkalti/backoff/v3 v3.0.0 // indirect
	github.com/containerd/stargz-snapshotter/estargz v0.14.3 // indirect
	github.com/docker/cli v27.1.1+incompatible // indirect
	github.com/docker/distribution v2.8.2+incompatible // indirect
	github.com/docker/docker-credential-helpers v0.7.0 // indirect
	github.com/evanphx/json-patch/v5 v5.5.0 // indirect
	github.com/fatih/color v1.16.0 // indirect
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/golang/snappy v0.0.4 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/go-kms-wrapping/entropy/v2 v2.0.0 // indirect
	github.com/hashicorp/go-rootcerts v1.0.2 // indirect
	github.com/hashicorp/go-secure-stdlib/base62 v0.1.1 // indirect
	github.com/hashicorp/go-secure-stdlib/parseutil v0.1.6 // indirect
	github.com/hashicorp/go-secure-stdlib/strutil v0.1.2 // indirect
	github.com/hashicorp/go-sockaddr v1.0.2 // indirect
	github.com/hashicorp/go-uuid v1.0.2 // indirect
	github.com/hashicorp/golang-lru v0.5.4 // indirect
	github.com/hashicorp/hcl v1.0.0 // indirect
	github.com/hashicorp/yamux v0.1.1 // indirect
	github.com/klauspost/compress v1.16.5 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/mitchellh/copystructure v1.0.0 // indirect
	github.com/mitchellh/go-homedir v1.1.0 // indirect
	github.com/mitchellh/go-testing-interface v1.0.0 // indirect
	github.com/mitchellh/mapstructure v1.5.0 // indirect
	github.com/mitchellh/reflectwalk v1.0.0 // indirect
	github.com/oklog/run v1.0.0 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.0-rc3 // indirect
	github.com/pierrec/lz4 v2.5.2+incompatible // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/ryanuber/go-glob v1.0.0 // indirect
	github.com/sirupsen/logrus v1.9.1 // indirect
	github.com/vbatts/tar-split v0.11.3 // indirect
	go.uber.org/atomic v1.9.0 // indirect
	golang.org/x/lint v0.0.0-20190930215403-16217165b5de // indirect
	golang.org/x/sync v0.12.0 // indirect
	golang.org/x/text v0.23.0 // indirect
	golang.org/x/time v0.0.0-20210723032227-1f47c861a9ac // indirect
	golang.org/x/tools v0.21.1-0.20240508182429-e35e4ccd0d2d // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240318140521-94a12d6c2237 // indirect
	gopkg.in/square/go-jose.v2 v2.5.1 // indirect
)
