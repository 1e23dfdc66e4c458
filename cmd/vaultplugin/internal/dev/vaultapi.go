package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// requestTimeout bounds one call to Vault's API: a registration or reload
// that takes longer is stuck, and a script should hear so.
const requestTimeout = 60 * time.Second

// vault is a Vault's HTTP API.
type vault struct {
	addr, token string
	client      *http.Client
}

func vaultFromEnv() (*vault, error) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		return nil, errors.New("VAULT_ADDR and VAULT_TOKEN must name the Vault and a token that may write sys/plugins/catalog")
	}
	return &vault{addr: strings.TrimSuffix(addr, "/"), token: token, client: &http.Client{Timeout: requestTimeout}}, nil
}

// call sends one request to Vault's API and returns the JSON object it
// answers. An answer of 400 or more is an error holding Vault's messages,
// or, when something other than Vault answered (a proxy, a load
// balancer), the first line of what it said.
func (v *vault) call(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, v.addr+"/v1/"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("X-Vault-Token", v.token)
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: Vault answered %d, and reading the answer failed: %w", method, path, resp.StatusCode, err)
	}
	var out map[string]any
	var jsonErr error
	if len(bytes.TrimSpace(raw)) > 0 {
		jsonErr = json.Unmarshal(raw, &out)
	}
	if resp.StatusCode >= 400 {
		return out, fmt.Errorf("%s %s: Vault answered %d%s", method, path, resp.StatusCode, errorText(out, jsonErr, raw, resp.Header.Get("Content-Type")))
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("%s %s: Vault answered %d, not with JSON: %s", method, path, resp.StatusCode, firstLine(raw, resp.Header.Get("Content-Type")))
	}
	return out, nil
}

// errorText is what an error answer says, to follow "Vault answered
// 502": Vault's messages when it is Vault's JSON ({"errors": [...]}),
// else the body's first line.
func errorText(out map[string]any, jsonErr error, raw []byte, contentType string) string {
	if es, ok := out["errors"].([]any); ok && jsonErr == nil {
		var msgs []string
		for _, e := range es {
			msgs = append(msgs, strings.TrimSpace(fmt.Sprint(e)))
		}
		if len(msgs) == 0 {
			return " with no error message"
		}
		return ": " + strings.Join(msgs, "; ")
	}
	if line := firstLine(raw, contentType); line != "" {
		return ": " + line
	}
	return " with an empty body"
}

// maxLine bounds the line of a foreign answer an error shows: enough for
// a proxy's "502 Bad Gateway" or an Envoy reset reason, short enough
// that a page of markup does not fill the terminal.
const maxLine = 200

// tags are HTML tags, removed from an HTML answer so that its first line
// is the page's title rather than "<html>".
var tags = regexp.MustCompile(`<[^>]*>`)

// firstLine is the first line of raw that holds text, trimmed and cut at
// maxLine characters.
func firstLine(raw []byte, contentType string) string {
	text := string(raw)
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/html" {
		text = tags.ReplaceAllString(text, "")
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if utf8.RuneCountInString(line) > maxLine {
			line = string([]rune(line)[:maxLine]) + "…"
		}
		return line
	}
	return ""
}

// version says which version the Vault reports (sys/seal-status, which
// answers without a token), for a person: "Vault 1.21.0", or why it is
// unknown.
func (v *vault) version(ctx context.Context) string {
	out, err := v.call(ctx, "GET", "sys/seal-status", nil)
	if err != nil {
		return "version unknown (" + err.Error() + ")"
	}
	if ver, ok := out["version"].(string); ok && ver != "" {
		return "Vault " + ver
	}
	return "version unknown (sys/seal-status names none)"
}

func (v *vault) register(ctx context.Context, p plugin) error {
	body := map[string]any{"sha256": p.sha256, "command": p.command}
	if p.version != "" {
		body["version"] = p.version
	}
	_, err := v.call(ctx, "PUT", "sys/plugins/catalog/"+p.typ+"/"+p.name, body)
	return err
}

// reload reloads every mount of the plugin name; scope "global" asks
// every node of a cluster to. It uses sys/plugins/reload/backend, which
// every Vault since 1.0 and OpenBao answer.
func (v *vault) reload(ctx context.Context, name, scope string) error {
	body := map[string]any{"plugin": name}
	if scope != "" {
		body["scope"] = scope
	}
	_, err := v.call(ctx, "PUT", "sys/plugins/reload/backend", body)
	return err
}

// mount enables the plugin at path: a secrets engine or an auth method
// as itself, a database plugin through the database secrets engine
// enabled at path (one already there is used as it is), with a
// connection of the plugin's name (connect).
func (v *vault) mount(ctx context.Context, p plugin, path string) error {
	body := map[string]any{"type": p.name}
	if p.version != "" {
		body["plugin_version"] = p.version
	}
	switch p.typ {
	case "secret":
		_, err := v.call(ctx, "POST", "sys/mounts/"+path, body)
		return err
	case "auth":
		_, err := v.call(ctx, "POST", "sys/auth/"+path, body)
		return err
	case "database":
		mounts, err := v.call(ctx, "GET", "sys/mounts", nil)
		if err != nil {
			return err
		}
		// The list is under "data" (and at the top level, for older
		// clients); either holds "PATH/": {"type": …}.
		if data, ok := mounts["data"].(map[string]any); ok {
			mounts = data
		}
		if m, ok := mounts[path+"/"].(map[string]any); ok {
			if m["type"] != "database" {
				return fmt.Errorf("%s/ is a %v secrets engine, not the database engine: give -path another MOUNT", path, m["type"])
			}
			return nil
		}
		_, err = v.call(ctx, "POST", "sys/mounts/"+path, map[string]any{"type": "database"})
		return err
	}
	return fmt.Errorf("plugin type %q: want secret, auth or database", p.typ)
}

// connect configures the connection named after the database plugin p in
// the database engine at path, as `vault write PATH/config/NAME
// plugin_name=NAME allowed_roles=*` does: Vault starts the plugin and
// initializes it with that configuration, and any role may use it.
func (v *vault) connect(ctx context.Context, p plugin, path string) error {
	body := map[string]any{"plugin_name": p.name, "allowed_roles": "*"}
	if p.version != "" {
		body["plugin_version"] = p.version
	}
	_, err := v.call(ctx, "PUT", path+"/config/"+p.name, body)
	return err
}

// reset closes the connection named after the database plugin p in the
// engine at path and opens it again, from the catalog's entry for p as
// it is now: how a new build of a database plugin is put to work. Vault
// 1.21's sys/plugins/reload/backend reaches a database plugin only by
// passing the request on to the engine's reload/NAME, and OpenBao 2.6.2
// refuses it ("only plugins of type auth and secret can be reloaded");
// the engine's reset/NAME works on both.
func (v *vault) reset(ctx context.Context, p plugin, path string) error {
	_, err := v.call(ctx, "PUT", path+"/reset/"+p.name, nil)
	return err
}

// tuneVersion sets the version of the plugin p mounted at path to p's.
func (v *vault) tuneVersion(ctx context.Context, p plugin, path string) error {
	body := map[string]any{"plugin_version": p.version}
	tune := "sys/mounts/" + path + "/tune"
	if p.typ == "auth" {
		tune = "sys/auth/" + path + "/tune"
	}
	_, err := v.call(ctx, "POST", tune, body)
	return err
}
