package main

// The help text, written once: vaultplugin help and every COMMAND -help
// print it, and doc.go is made from it (go generate), so that go doc and
// pkg.go.dev show the same. It is Go doc comment syntax: paragraphs, and
// tab-indented blocks, kept as they are; a line that begins with "- " or
// "# " would be a list or a heading. TestDocs fails when doc.go is stale
// or when gofmt would rewrite it.

const overview = `Vaultplugin checks a Vault plugin binary by running it the ways Vault
does, and says what to fix. It also writes a new plugin module, serves a
plugin package from a Vault dev server while you edit it, registers
plugin binaries in a Vault, and builds a plugin's release: binaries,
checksums, OCI images and the registration for Vault and OpenBao.

	go install github.com/plugkit/vaultplugin/cmd/vaultplugin@latest
	vaultplugin new github.com/you/vault-plugin-secrets-foo
	vaultplugin check ./vault-plugin-secrets-example
`

const helpFooter = `Run "vaultplugin help COMMAND" or "vaultplugin COMMAND -help" for a
command's flags and details.

Every command exits 0 when it did what was asked, 1 when it failed
(check: when a check failed), and 2 on a mistake on the command line: an
unknown command, a bad flag, a missing or extra argument.
`

const checkHelp = `Check starts the Vault plugin BINARY the ways Vault does and prints one
line per check: ✓, ! or ✗; each ! and ✗ comes with the fix. A ✗ is kept
for what breaks under a real Vault (it cannot start, mount or serve the
plugin) or loses data or processes (an orphan, a stop that skips
Cleanup); what Vault serves all the same, but is worth fixing, is a !.
It works on any plugin binary, built with this module or with the bare
SDK, and every fix names the bare SDK's remedy as well as serve.Run.

	vaultplugin check ./vault-plugin-secrets-example
	vaultplugin check -args -ca-cert=/etc/vault/ca.pem -env MY_SETTING=1 ./my-plugin
	vaultplugin check -json ./my-plugin > report.json

The flags may come before or after BINARY:

	-args ARG       an argument for the plugin, as vault plugin register -args
	                passes it; repeat for more
	-env KEY=VALUE  an environment entry for the plugin, as vault plugin
	                register -env sets it; repeat for more
	-json           print the report as one JSON object, for CI (see JSON below)

Check starts the plugin as Vault 1.21 does (the handshake cookie, Vault's
environment, AutoMTLS, protocol 5 for secrets engines and auth methods, 5
and 6 for database plugins, a multiplexing id per mount) through package
serve/servetest, and with os/exec where a check needs the raw process.
When a secrets engine's or auth method's AutoMTLS start fails, Vault
starts it again on the legacy TLS path (protocols 3 and 4, no AutoMTLS,
a wrapping token in VAULT_UNWRAP_TOKEN whose unwrap endpoint hands it
its certificate), and serves it if that works; so does check, which then
warns at handshake and runs every other check on that path. A bare SDK
main linked with github.com/hashicorp/vault/api before v1.8.0 is such a
plugin: its TLS provider unwraps a token even under AutoMTLS, where
none is sent, and exits. Every start gets the -args and -env given to
check, as "vault plugin register -args … -env …" gives them to the
plugin. It prints one line per check:

	✓ platform   linux/amd64 ELF executable: runs here
	! handshake  serves, but only over the legacy TLS path (…), to which Vault falls back: under AutoMTLS it exited: …
	             fix: upgrade github.com/hashicorp/vault/api to ≥ v1.8.0 (…)
	✗ host-death still running 5s after its host was killed: an orphan that would run forever (pid 4242, killed by the check)
	             fix: use serve.Run: it watches its parent and exits when its host dies; go-plugin does not, so a bare SDK main must …
	· protocol   serves protocol 3, 4, 5; not multiplexed: Vault starts a process for each of its mounts (…)
	- sigint     needs a handshake (see handshake)

✓ passed; ! is a warning: Vault serves the plugin, and the line under it
is the fix; ✗ failed, and the line under it is the fix; · is
information, no verdict; - is a check that could not run, with the
reason (the system lacks what it needs, or a check it depends on
failed). Check exits 0 when no check failed, warnings or not, and 1 when
one did, or when the run was interrupted or could not finish.

The checks, in the report's order, and what each fails (✗) or warns (!)
about:

	platform    the executable's header (ELF, Mach-O, PE) names this OS and architecture, and the file
	            is executable (✗ otherwise: Vault cannot run it)
	static      an ELF binary has no program interpreter and needs no shared library (! otherwise: a CGO
	            binary linked against glibc runs here, but not on the Alpine-based Vault image)
	modules     the versions of github.com/hashicorp/vault/sdk, vault/api, go-plugin and
	            google.golang.org/grpc in the binary's build info (! when older than Vault 1.21.0
	            links, with the go get that fixes it; skipped without build info)
	type        the handshake cookie it answers, backend (VAULT_BACKEND_PLUGIN) tried first, then
	            database (VAULT_DATABASE_PLUGIN); then the type a first mount reports: Type() after
	            Setup for a backend (secret, auth), Type() for a database (✗ when it answers neither
	            cookie, cannot start, or its mount fails)
	stdout      nothing on stdout before the handshake line, CORE|APP|NETWORK|ADDRESS|PROTOCOL[|CERT]
	            (✗ otherwise: Vault fails the start with "Unrecognized remote plugin message: <that line>")
	handshake   the handshake as Vault does it (go-plugin's client, AutoMTLS) completes within 10s (! when
	            only Vault's fallback, the legacy TLS path, works; ✗ when neither does)
	protocol    the protocol versions it serves (each offered alone: backends 3, 4, 5; databases 5, 6),
	            and whether one process serves two mounts (connections); not multiplexing is information
	            (! without protocol 5; ✗ when a second mount in the process fails)
	metadata    it starts in metadata mode (VAULT_PLUGIN_METADATA_MODE=true, no TLS) and a mount's Type
	            answers there: Vault starts a backend so before it falls back to the legacy TLS path, and
	            reads a database's version so (✗ on the legacy path, where Vault needs it; ! elsewhere)
	version     the version it reports to the host (the PluginVersion gRPC call) matches what
	            BINARY -version prints; a binary that reports none and answers -version with
	            "(unknown)" passes (✗ for a reported version that is no semantic version, which Vault
	            refuses to register; ! for none, or a -version that does not answer or differs)
	request     a fresh mount answers a request: the root help, then a read (or list) of a path its
	            OpenAPI document names, else of the root path; an error the backend returns still proves
	            the round trip, a broken connection does not (✗). Type() for a database
	sigint      SIGINT does not end it within 1s: a Ctrl-C in Vault's terminal reaches its plugins
	            (✗ otherwise: it dies before Vault calls its Cleanup)
	sigterm     SIGTERM ends it with exit 0 within 10s, how a supervisor stops Vault's process group
	            (✗ when SIGTERM kills it or it outlives the bound: no Cleanup runs; ! for another exit code)
	host-death  started from a short-lived host that is then killed, as Vault may be, it exits within 5s
	            (✗ otherwise: an orphan that runs forever)
	by-hand     run by hand (no cookie, no arguments) it exits non-zero within 5s and says it is a Vault
	            plugin (! otherwise, go-plugin's generic "This binary is a plugin" too)
	mlock       started with VAULT_PLUGIN_MLOCK_ENABLED=true (which Vault sets unless disable_mlock) and,
	            on Linux, without CAP_IPC_LOCK, it either starts or its failure names CAP_IPC_LOCK (!
	            otherwise)

The signal checks are skipped on Windows, which has no signals to send a
process: a Windows host kills its plugins. The static check applies to
ELF binaries only: macOS and Windows binaries always link their system's
libraries.

The host-death and mlock checks run vaultplugin itself as the plugin's
host, through a hidden subcommand. For mlock that host drops
CAP_IPC_LOCK (from its inheritable, ambient and bounding sets) before it
starts the plugin, so the plugin runs as under Vault's container image,
where the vault binary holds the capability as a file capability that
its children do not inherit: mlockall then succeeds only within
RLIMIT_MEMLOCK. A check run without the privilege to drop it says so.

Bounds: Vault gives a plugin one minute to print its handshake
(go-plugin's default start timeout). Check gives it 10 seconds: a healthy
plugin answers in about 10 milliseconds, every mount, unseal and reload
waits on its start, and a check that waits a minute for a plugin that
never answers stalls CI for nothing. Calls to a started plugin (Setup, a
request, Type) get 10 seconds each; SIGTERM 10 seconds, twice
serve.Run's default shutdown timeout; the host's death 5 seconds, twenty
times the 250 ms in which serve.Run notices it; a run by hand or with
-version 5 seconds.

JSON: -json prints the same report as one JSON object. Fields may be
added; none is removed or changes meaning while "schema" is 1.

	schema        1
	binary        the absolute path checked
	kind          "backend" or "database": the cookie it takes for its own, also when it then fails
	              to start; "" for neither
	type          "secret", "auth" or "database"; "" when no mount said
	tls           "automtls", or "legacy" when only the legacy TLS path worked; "" when no start
	              completed its handshake
	passed        true when no check failed, warnings or not (the exit code is then 0)
	counts        the number of checks by status: {"pass": 11, "fail": 1, "warn": 1, "info": 1}
	checks        one object per check, in the order above:
	  id            "platform", "static", "modules", "type", "stdout", "handshake", "protocol",
	                "metadata", "version", "request", "sigint", "sigterm", "host-death", "by-hand", "mlock"
	  status        "pass", "fail", "warn", "info" or "skip"
	  detail        what was seen, one line
	  fix           one line, present exactly when status is "fail" or "warn"
	  duration_ms   how long the check took
`

const devHelp = `Dev is the edit, build, register, reload loop. It builds the plugin
PACKAGE (default .) into a fresh plugin directory, starts "vault server
-dev" on a free 127.0.0.1 port with its own root token, registers the
plugin with its sha256 and the version it reports, mounts it at MOUNT
(default: its name), and prints the two export lines to paste into
another terminal. Then, whenever the package's Go files (those of its
main module's packages) change, it rebuilds; a build that succeeds is
registered again with its new sha256 and reloaded, and one status line
says the build time, the reload time and the new pid; a build that fails
shows the compiler's error and leaves the previous build serving. The
mount's data is Vault's and survives every reload. Ctrl-C stops the dev
server and every plugin process it started and removes the work
directory.

A database plugin is not mounted itself: dev enables the database
secrets engine at MOUNT (default: database; one already there is used)
and configures a connection named after the plugin (vault write
MOUNT/config/NAME plugin_name=NAME allowed_roles=*), and puts each new
build to work by resetting that connection (MOUNT/reset/NAME). A plugin
that needs settings of its own refuses that configuration: dev says so
and keeps watching, and the connection is yours to configure.

The flags may come before or after PACKAGE:

	-vault BIN                  the vault binary for the dev server, used
	                            even when VAULT_ADDR is set (default: the
	                            Vault at VAULT_ADDR, else vault from PATH,
	                            else the e2e suite's cached build)
	-path MOUNT                 where to mount the plugin (default: its name;
	                            database for a database plugin)
	-type secret|auth|database  the plugin's type, for a plugin that does not
	                            answer -describe
	-plugin-dir DIR             with VAULT_ADDR set: that Vault's plugin
	                            directory, to copy each build into

Without -vault but with VAULT_ADDR (and VAULT_TOKEN) set, dev uses that
Vault instead of starting one, and -plugin-dir is required. Either way
its first lines say which Vault it uses: the binary, the version it
reports and its address. The dev server it starts gets none of the
shell's VAULT_ADDR, VAULT_TOKEN, VAULT_API_ADDR, VAULT_CLUSTER_ADDR or
VAULT_REDIRECT_ADDR, which would point it, or its plugins, at another
Vault.
`

const registerHelp = `Register is one step of dev, for scripts: it registers BINARY in the
catalog of the Vault at VAULT_ADDR (token VAULT_TOKEN) with its sha256,
under its file name unless -name says otherwise, with the type and
version it reports through -describe (plugins served by this module
answer it) unless -type and -version say otherwise. A binary that does
not answer -describe is started as Vault starts a plugin of unknown type
(in metadata mode), and a mount's Type() says what it is. BINARY must be
in Vault's plugin directory, or be copied there with -plugin-dir.

A -type that contradicts the type BINARY reports for itself is refused,
naming both: Vault would register it, then fail every mount (an auth
method registered as a secrets engine: "unknown backend type"). -force
registers it all the same.

The flags may come before or after BINARY:

	-name NAME       the name to register under (default: BINARY's file name)
	-version V       the version to register (default: what BINARY -describe
	                 says, if it answers)
	-type T          secret, auth or database (default: what BINARY reports
	                 for itself)
	-force           register with -type even when BINARY reports another type
	-plugin-dir DIR  copy BINARY into DIR, Vault's plugin_directory, first
	-reload          reload the plugin's mounts after registering
	-scope global    with -reload, reload on every node of a cluster
`

const releaseHelp = `Release builds the plugin's main PACKAGE (default ".") for every
platform operators run, checks each binary, and writes into DIR what
operators install: the binaries, SHA256SUMS, OCI images, and the
registration for Vault and OpenBao, made from what was built.

	vaultplugin release -version v1.2.3 -o dist ./cmd/vault-plugin-secrets-example
	vaultplugin release -version v1.2.3 -o dist -push ghcr.io/acme/vault-plugin-secrets-example ./cmd/vault-plugin-secrets-example
	vaultplugin release -version v1.2.3 -o dist -platforms linux/amd64 -dry-run ./cmd/vault-plugin-secrets-example

The flags may come before or after PACKAGE:

	-version VERSION  the release's version, required: a semantic version
	                  MAJOR.MINOR.PATCH ("v1.2.3", "1.2.3-rc.1"), used as
	                  Vault stores it, with a leading v
	-o DIR            where to write, required: a new or empty directory
	-platforms LIST   OS/ARCH targets, comma-separated (default: all of
	                  linux, darwin, windows on amd64 and arm64)
	-name NAME        the catalog name in the registration (default: the
	                  binary's name, the package path's last element)
	-type TYPE        secret, auth or database (default: what the binary
	                  built for this machine says it is)
	-push REF         push the images to the repository REF, tagged with
	                  the version, with the credentials of the Docker config
	                  and its credential helpers (as docker push uses them);
	                  a registry on 127.0.0.1 or localhost is spoken to over
	                  plain HTTP
	-image REPO       the images' repository in the registration when they
	                  are pushed by other means
	-source URL       the images' org.opencontainers.image.source label
	                  (default: https:// and the module path, when that
	                  begins with a host name)
	-tags TAGS        build tags, as go build -tags takes them
	-strip BOOL       strip the symbol table and DWARF (-ldflags=-s -w),
	                  the default; -strip=false keeps them (see below)
	-allow-dirty      release from a checkout with uncommitted changes, or
	                  from outside a git checkout
	-allow-nonsemver  take any -version word: it then names the files and
	                  images only, the binaries carry no version, and no
	                  OpenBao or container registration is made (both need
	                  the version the plugin reports)
	-dry-run          print what would be built and written, and stop
	-json             print what was produced as one JSON object, for CI
	                  (see JSON below)

Each binary is built with go build -trimpath -buildvcs=true
-ldflags="-s -w -X …" and CGO_ENABLED=0, ignoring GOFLAGS, so that two
releases of one commit are byte for byte the same. The version is
stamped with -X into the library's serve and dbserve, so the plugin
reports it to the host and prints it for -version whatever its main
says (a main that calls serve.WithVersion keeps its own, and the release
refuses it when the two differ); PACKAGE must therefore serve with this
module's serve.Run or dbserve.Run. Release refuses a checkout with
uncommitted changes, and a version that is not semantic, unless a flag
above says otherwise.

Before anything is written, every binary must pass check's checks that
read the file (the platform its header names, static linking on Linux),
and the binary built for this machine is started as Vault starts it:
the handshake cookie it answers and its type, a handshake with a mount,
and the version it reports to the host against its -version. A failure
refuses the release and names the binary and the check.

DIR then holds:

	NAME_VERSION_OS_ARCH[.exe]  the binaries
	SHA256SUMS                  their sums, for sha256sum -c SHA256SUMS
	oci/                        an OCI image layout: one image per Linux
	                            architecture and their index, tagged VERSION
	registration.txt            the register lines for Vault (a binary in
	                            plugin_directory, per OS/arch), the OpenBao
	                            plugin blocks and Vault's container runtime
	                            registration
	openbao_linux_ARCH.hcl      the OpenBao plugin block for each Linux
	                            architecture (with -push or -image)
	release.json                what -json prints

Each image holds the binary at its root, where OpenBao's downloader looks
for binary_name, and a /tmp; its ENTRYPOINT runs the binary, as Vault's
container runtime needs; it runs as the non-root user 65532; its config
and layer carry the commit's time, and its labels the
org.opencontainers.image source, version and revision. OpenBao 2.5+ with
plugin_auto_download and plugin_auto_register downloads the image for its
platform, checks the binary against the block's sha256sum and registers
it at the version, so the block for a node's architecture is all an
operator adds to its configuration.

Vault hashes the whole binary at every plugin start, so the default
strips the symbol table and DWARF (-s -w): 30% fewer bytes, and secrets
enable to the first answer 9 to 14% faster through Vault 1.21.0
(bench/README.md). The lean tag is not the default, since it removes the
operator endpoint: give -tags vaultplugin_noendpoint for a further 5%.

JSON: with -json release prints one object, the same as release.json:

	schema         1
	dry_run        true for -dry-run (no sums, sizes or digests then)
	name           the catalog name; binary_name, the binary's
	type           "secret", "auth" or "database"
	version        the version; stamped, whether the binaries carry it
	package        the main package's import path; module, its module
	revision       the commit (vcs.revision), dirty whether it had changes
	created        the time the images carry (the commit's)
	go_version     the Go release that built the binaries
	build_flags    the environment and go build flags
	output         DIR
	binaries       [{file, os, arch, size, sha256, version (read back from
	               the binary), checks [check's results], build_ms}]
	sha256sums     "SHA256SUMS"
	images         {layout, image, tag, index_digest, pushed, manifests:
	               [{os, arch, variant, digest, config_digest, layer_size,
	               binary_sha256}]}; absent without a Linux target
	registration   {vault: [{os, arch, command}], openbao: [{arch, file,
	               block}], vault_container: [{os, arch, command}],
	               vault_runtime}
	files          every file written into DIR
	duration_ms    how long the release took

Fields may be added; none is removed or changes meaning while "schema"
stays 1. Release exits 0 when it wrote the release (or printed the
plan), 1 when a build, a check, a write or the push failed, and 2 on a
mistake on the command line.
`

const newHelp = `New writes a new plugin module into DIR (default: NAME, in the current
directory): a secrets engine (the default), an auth method or a database
plugin that builds, passes its tests and serves in a Vault at once, to
make your own.

	vaultplugin new github.com/you/vault-plugin-secrets-foo
	vaultplugin new -type auth example.com/vault-plugin-auth-foo ./foo

The flags may come before or after MODULE:

	-type T        secret (the default), auth or database
	-replace DIR   require this module from the checkout at DIR (a replace
	               line in go.mod), to work on the library and a plugin
	               together; the library is otherwise required at the
	               version this vaultplugin was installed at, or at the
	               newest release when it was built from a checkout

MODULE is the new module's path, as in go mod init. NAME is its last
element (the one before a /v2-style suffix), lower-cased, with each
character other than a letter, digit, '.', '-' or '_' made a '-': it is
the plugin's command (cmd/NAME), its binary, and its name in Vault's
catalog. DIR must not exist, or be empty (a .git directory aside).

The module holds:

	cmd/NAME/main.go   the one-line main: serve.Run(backend.Factory) or
	                   dbserve.Run(database.New), with the version the
	                   plugin reports to Vault
	backend/           a secrets engine: config (with an existence check),
	                   creds, which issues a token under a lease that renews
	                   and revokes, and the tokens/ list; or an auth method:
	                   config (the SDK's token parameters), users/NAME, the
	                   users/ list, and login, whose tokens renew
	database/          a database plugin (dbplugin v5) against an in-memory
	                   store: Initialize, NewUser, UpdateUser, DeleteUser,
	                   Type, Close
	*_test.go          servetest tests of each path, table-driven, with
	                   failed requests and a lease renewed and revoked
	README.md          the three commands: go test -race ./...,
	                   vaultplugin dev and vaultplugin check
	.github/workflows  CI that runs them, check on the CGO_ENABLED=0 build

go.mod requires the newest releases of github.com/hashicorp/vault/sdk,
vault/api and go-plugin that the Go module proxy serves, resolved when the
module is made: new runs "go get MODULE@latest" for the three (never -u,
which would raise go-metrics past what the SDK builds with) and "go mod
tidy" in DIR, with your environment (GOPROXY, GOPRIVATE, GOFLAGS) and
GOWORK=off. It prints each step, the versions it resolved, and what to run
next. When a step fails, it removes what it wrote.

New exits 2 on an unknown -type, a MODULE that is not a valid module
path, and a DIR that is not empty.
`
