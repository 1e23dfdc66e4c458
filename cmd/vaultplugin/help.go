package main

// The help text, written once: vaultplugin help and every COMMAND -help
// print it, and doc.go is made from it (go generate), so that go doc and
// pkg.go.dev show the same. It is Go doc comment syntax: paragraphs, and
// tab-indented blocks, kept as they are; a line that begins with "- " or
// "# " would be a list or a heading. TestDocs fails when doc.go is stale
// or when gofmt would rewrite it.

const overview = `Vaultplugin checks a Vault plugin binary by running it the ways Vault
does, and says what to fix. It also serves a plugin package from a Vault
dev server while you edit it, and registers plugin binaries in a Vault.

	go install github.com/plugkit/vaultplugin/cmd/vaultplugin@latest
	vaultplugin check ./vault-plugin-secrets-example
`

const helpFooter = `Run "vaultplugin help COMMAND" or "vaultplugin COMMAND -help" for a
command's flags and details.

Every command exits 0 when it did what was asked, 1 when it failed
(check: when a check failed), and 2 on a mistake on the command line: an
unknown command, a bad flag, a missing or extra argument.
`

const checkHelp = `Check starts the Vault plugin BINARY the ways Vault does and prints one
line per check, ✓ or ✗; each ✗ comes with the fix. It works on any plugin
binary, built with this module or with the bare SDK.

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
Every start gets the -args and -env given to check, as "vault plugin
register -args … -env …" gives them to the plugin. It prints one line per
check:

	✓ platform   linux/amd64 ELF executable: runs here
	✗ host-death still running 5s after its host was killed: an orphan that would run forever (pid 4242, killed by the check)
	             fix: use serve.Run: it watches its parent and exits when its host dies
	· protocol   serves protocol 3, 4, 5; not multiplexed: Vault starts a process for each of its mounts (…)
	- sigint     needs a handshake (see handshake)

✓ passed; ✗ failed, and the line under it is the fix; · is information,
no verdict; - is a check that could not run, with the reason (the system
lacks what it needs, or a check it depends on failed). Check exits 0 when
no check failed, and 1 when one did, or when the run was interrupted or
could not finish.

The checks, in the report's order:

	platform    the executable's header (ELF, Mach-O, PE) names this OS and architecture, and the file is executable
	static      an ELF binary has no program interpreter and needs no shared library: a CGO binary
	            linked against glibc fails to start on the Alpine-based Vault image
	type        the handshake cookie it answers, backend (VAULT_BACKEND_PLUGIN) tried first, then
	            database (VAULT_DATABASE_PLUGIN); then the type a first mount reports: Type() after
	            Setup for a backend (secret, auth), Type() for a database
	stdout      nothing on stdout before the handshake line, CORE|APP|NETWORK|ADDRESS|PROTOCOL[|CERT]:
	            Vault fails the start with "Unrecognized remote plugin message: <that line>"
	handshake   the handshake as Vault does it (go-plugin's client, AutoMTLS) completes within 10s
	protocol    the protocol versions it serves (each offered alone: backends 3, 4, 5; databases 5, 6),
	            and whether one process serves two mounts (connections); not multiplexing is information
	metadata    it starts in metadata mode (VAULT_PLUGIN_METADATA_MODE=true, no TLS), as Vault registers it,
	            and a mount's Type answers there
	version     the version it reports to the host (the PluginVersion gRPC call) matches what
	            BINARY -version prints; a binary that reports none and answers -version with
	            "(unknown)" passes, one that has neither a version nor a -version fails
	request     a fresh mount answers a request: the root help, then a read (or list) of a path its
	            OpenAPI document names, else of the root path; an error the backend returns still proves
	            the round trip, a broken connection does not. Type() for a database
	sigint      SIGINT does not end it within 1s (a Ctrl-C in Vault's terminal reaches its plugins)
	sigterm     SIGTERM ends it with exit 0 within 10s (how a supervisor stops Vault's process group)
	host-death  started from a short-lived host that is then killed, as Vault may be, it exits within 5s
	by-hand     run by hand (no cookie, no arguments) it exits non-zero within 5s and says it is a Vault
	            plugin; go-plugin's generic "This binary is a plugin" fails
	mlock       started with VAULT_PLUGIN_MLOCK_ENABLED=true (which Vault sets unless disable_mlock) and,
	            on Linux, without CAP_IPC_LOCK, it either starts or its failure names CAP_IPC_LOCK

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
	kind          "backend" or "database": the cookie it answers; "" for neither
	type          "secret", "auth" or "database"; "" when no mount said
	passed        true when no check failed (the exit code is then 0)
	counts        the number of checks by status: {"pass": 12, "fail": 1, "info": 1}
	checks        one object per check, in the order above:
	  id            "platform", "static", "type", "stdout", "handshake", "protocol", "metadata",
	                "version", "request", "sigint", "sigterm", "host-death", "by-hand", "mlock"
	  status        "pass", "fail", "info" or "skip"
	  detail        what was seen, one line
	  fix           one line, present exactly when status is "fail"
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

The flags may come before or after PACKAGE:

	-vault BIN         the vault binary for the dev server (default: vault
	                   from PATH, else the e2e suite's cached build)
	-path MOUNT        where to mount the plugin (default: its name)
	-type secret|auth  the plugin's type, for a plugin that does not answer
	                   -describe
	-plugin-dir DIR    with VAULT_ADDR set: that Vault's plugin directory, to
	                   copy each build into

With VAULT_ADDR (and VAULT_TOKEN) set, dev uses that Vault instead of
starting one, and -plugin-dir is required.
`

const registerHelp = `Register is one step of dev, for scripts: it registers BINARY in the
catalog of the Vault at VAULT_ADDR (token VAULT_TOKEN) with its sha256,
under its file name unless -name says otherwise, with the type and
version it reports through -describe (plugins served by this module
answer it) unless -type and -version say otherwise. BINARY must be in
Vault's plugin directory, or be copied there with -plugin-dir.

The flags may come before or after BINARY:

	-name NAME       the name to register under (default: BINARY's file name)
	-version V       the version to register (default: what BINARY -describe
	                 says, if it answers)
	-type T          secret, auth or database (default: what BINARY -describe
	                 says, if it answers)
	-plugin-dir DIR  copy BINARY into DIR, Vault's plugin_directory, first
	-reload          reload the plugin's mounts after registering
	-scope global    with -reload, reload on every node of a cluster
`
