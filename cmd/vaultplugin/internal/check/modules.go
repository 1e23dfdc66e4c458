package check

import (
	"debug/buildinfo"
	"fmt"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// vaultRelease is the Vault release whose dependencies the modules check
// measures a plugin's against: the newest the e2e suite proves.
const vaultRelease = "1.21.0"

// linkedModule is a module whose version decides what a plugin can do
// under Vault: the SDK and its TLS provider, the plugin protocol, the
// gRPC transport (HTTP/2 fixes such as CVE-2023-44487's arrive there).
type linkedModule struct {
	path, short string
	// vault is the version Vault vaultRelease links.
	vault string
}

// linkedModules are the modules the check reports, with the versions Vault
// v1.21.0 links, from its go.mod (github.com/hashicorp/vault@v1.21.0/go.mod:
// require github.com/hashicorp/go-plugin v1.6.3, github.com/hashicorp/vault/api
// v1.22.0, github.com/hashicorp/vault/sdk v0.20.0, google.golang.org/grpc
// v1.75.1; its replace lines point api and sdk at its own folders, which
// those tags are). The release's binary built by e2e/vaultbuild/v1.21.0
// reports the same in its build info.
func linkedModules() []linkedModule {
	return []linkedModule{
		{path: "github.com/hashicorp/vault/sdk", short: "vault/sdk", vault: "v0.20.0"},
		{path: "github.com/hashicorp/vault/api", short: "vault/api", vault: "v1.22.0"},
		{path: "github.com/hashicorp/go-plugin", short: "go-plugin", vault: "v1.6.3"},
		{path: "google.golang.org/grpc", short: "grpc", vault: "v1.75.1"},
	}
}

// checkModules is the modules check: the versions of linkedModules the
// binary's build info names, against Vault's. An older one works under
// Vault (the other checks say whether), so it warns, with the go get that
// brings it up to Vault's.
func checkModules(bin string) Result {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return Result{ID: idModules, Status: Skip, Detail: "no Go build info to read (" + err.Error() + "): which SDK it links is unknown"}
	}
	deps := map[string]string{}
	for _, d := range info.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version // "" for a directory
		}
		deps[d.Path] = v
	}
	var seen, missing, old, get []string
	for _, m := range linkedModules() {
		v, ok := deps[m.path]
		switch {
		case !ok:
			missing = append(missing, m.short)
		case v == "":
			seen = append(seen, m.short+" from a local directory")
		default:
			seen = append(seen, m.short+" "+v)
			if older(v, m.vault) {
				old = append(old, fmt.Sprintf("%s %s < %s", m.short, v, m.vault))
				get = append(get, m.path+"@"+m.vault)
			}
		}
	}
	detail := "links " + strings.Join(seen, ", ")
	if len(seen) == 0 {
		detail = "links none of them"
	}
	if len(missing) > 0 {
		detail += ", not " + strings.Join(missing, " nor ")
	}
	detail += " (" + info.GoVersion + ")"
	if len(old) == 0 {
		return Result{ID: idModules, Status: Pass, Detail: detail + ": none older than Vault " + vaultRelease + " links"}
	}
	return Result{ID: idModules, Status: Warn,
		Detail: detail + "; older than Vault " + vaultRelease + " links: " + strings.Join(old, ", "),
		Fix:    "go get " + strings.Join(get, " ") + " && go mod tidy, in the plugin's module"}
}

// older reports whether version v precedes min. A version that does not
// parse is not called older; a pseudo-version parses, as a prerelease of
// the version before it.
func older(v, min string) bool {
	a, err := goversion.NewVersion(v)
	if err != nil {
		return false
	}
	b, err := goversion.NewVersion(min)
	if err != nil {
		return false
	}
	return a.LessThan(b)
}
