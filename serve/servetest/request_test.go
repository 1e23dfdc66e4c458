package servetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// status is the HTTP status Vault would answer (resp, err) with.
func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return http.StatusOK
	}
	var re *servetest.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *servetest.ResponseError", err, err)
	}
	return re.StatusCode
}

func TestMountRequestsAsVaultHandlesThem(t *testing.T) {
	ctx := context.Background()
	p := servetest.Start(t, servetest.Build(t, plugin), servetest.WithPluginName("probe"))
	m := p.Mount(t, nil)
	// A real host's mounts, which parallel tests share, are named NAME-
	// and six random characters.
	name := "probe"
	if p.Host().Real {
		name = `probe-[a-z0-9]{6}`
	}
	if !regexp.MustCompile(`^`+name+`/$`).MatchString(m.MountPoint) || m.MountType+"/" != m.MountPoint ||
		!regexp.MustCompile(`^`+regexp.QuoteMeta(m.MountType)+`_[0-9a-f]{8}$`).MatchString(m.MountAccessor) {
		t.Fatalf("mount path %q, type %q, accessor %q", m.MountPoint, m.MountType, m.MountAccessor)
	}

	// The existence check decides create or update.
	for path, op := range map[string]string{"echo/new": "create", "echo/existing": "update"} {
		resp, err := m.Write(ctx, path, map[string]any{"k": "v"})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Data["operation"]; got != op {
			t.Errorf("write %s: the backend saw %v, want %s", path, got, op)
		}
	}

	resp, err := m.Read(ctx, "echo/x")
	if err != nil {
		t.Fatal(err)
	}
	d := resp.Data
	for k, want := range map[string]any{
		"path": "echo/x", "mount_point": m.MountPoint, "mount_type": m.MountType, "mount_accessor": "",
		"display_name": "token", "unauthenticated": false, "remote_addr": "127.0.0.1",
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	if tok, _ := d["client_token"].(string); !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(tok) {
		t.Errorf("client_token = %q, want the router's salted sha1", tok)
	}

	// A list gets its slash.
	resp, err = m.List(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data["path"] != "echo/" || resp.Data["operation"] != "list" {
		t.Errorf("list echo: the backend saw %v %v", resp.Data["operation"], resp.Data["path"])
	}

	// Logins carry no token's identity and need an unauthenticated path.
	resp, err = m.Login(ctx, "login", map[string]any{"password": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data["unauthenticated"] != true || resp.Data["display_name"] != "" {
		t.Errorf("login: unauthenticated %v, display_name %q", resp.Data["unauthenticated"], resp.Data["display_name"])
	}
	if _, err := m.Login(ctx, "echo/x", nil); status(t, err) != http.StatusForbidden {
		t.Errorf("login at a path that needs a token: %v, want 403", err)
	}

	for _, tc := range []struct {
		name   string
		do     func() (*logical.Response, error)
		status int
		msg    string
	}{
		{"read of nothing", func() (*logical.Response, error) { return m.Read(ctx, "kv/missing") }, 404, ""},
		{"unknown path", func() (*logical.Response, error) { return m.Read(ctx, "no/such/path") }, 404, "unsupported path"},
		{"unsupported operation", func() (*logical.Response, error) { return m.Delete(ctx, "kv/x") }, 405, "unsupported operation"},
		{"write to a directory", func() (*logical.Response, error) { return m.Write(ctx, "kv/", nil) }, 400, "cannot write to a path ending in '/'"},
		{"write to the mount", func() (*logical.Response, error) { return m.Write(ctx, "", nil) }, 400, "cannot write to a path ending in '/'"},
		{"handler panic", func() (*logical.Response, error) { return m.Read(ctx, "panic") }, 500, "1 error occurred"},
	} {
		_, err := tc.do()
		if got := status(t, err); got != tc.status {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, err, tc.status)
			continue
		}
		if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.msg)
		}
	}
}

// The Kubernetes-auth trap in small: a path with an existence check and
// only a create handler takes a write through Mount.Write, as through
// Vault, while the raw HandleRequest with an update is refused.
func TestWriteRunsTheExistenceCheck(t *testing.T) {
	ctx := context.Background()
	m := servetest.Start(t, servetest.Build(t, plugin)).Mount(t, nil)
	if _, err := m.Write(ctx, "panic-exists", nil); status(t, err) != http.StatusInternalServerError {
		t.Fatalf("the existence check's panic: %v, want a 500", err)
	}
	if _, err := m.Write(ctx, "kv/a", map[string]any{"value": "1"}); err != nil {
		t.Fatal(err)
	}
	resp, err := m.Read(ctx, "kv/a")
	if err != nil || resp.Data["value"] != "1" {
		t.Fatalf("read back: %v %v", resp, err)
	}
}

func TestSystemView(t *testing.T) {
	ctx := context.Background()
	bin := servetest.Build(t, plugin)
	for _, tc := range []struct {
		opts        []servetest.Option
		def, maxTTL time.Duration
	}{
		{nil, servetest.DefaultLeaseTTL, servetest.DefaultMaxTTL},
		{[]servetest.Option{servetest.WithLeaseTTLs(time.Hour, 2*time.Hour)}, time.Hour, 2 * time.Hour},
	} {
		resp, err := servetest.Start(t, bin, tc.opts...).Mount(t, nil).Read(ctx, "sysview")
		if err != nil {
			t.Fatal(err)
		}
		d := resp.Data
		if got := d["default_lease_ttl"]; !jsonEqual(got, int64(tc.def.Seconds())) {
			t.Errorf("DefaultLeaseTTL = %v s, want %v", got, tc.def)
		}
		if got := d["max_lease_ttl"]; !jsonEqual(got, int64(tc.maxTTL.Seconds())) {
			t.Errorf("MaxLeaseTTL = %v s, want %v", got, tc.maxTTL)
		}
		if d["password_policy_error"] != true || d["entity_none"] != true {
			t.Errorf("password policy refused %v, no entity for a root token %v", d["password_policy_error"], d["entity_none"])
		}
	}
	for _, o := range []servetest.Option{servetest.WithLeaseTTLs(2*time.Hour, time.Hour), servetest.WithLeaseTTLs(0, time.Hour), servetest.WithPluginName("a/b")} {
		if _, err := servetest.New(ctx, bin, o); err == nil {
			t.Errorf("an invalid option was accepted")
		}
	}
}

// jsonEqual compares a number as it crossed the plugin's gRPC boundary
// (JSON: a float64, or a json.Number in SDKs that decode with UseNumber)
// with want.
func jsonEqual(got any, want int64) bool {
	if f, ok := got.(float64); ok {
		return f == float64(want)
	}
	return fmt.Sprint(got) == strconv.FormatInt(want, 10)
}
