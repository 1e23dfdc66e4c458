package servetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// variant is a copy of the test plugin's binary named so that it runs
// with modes added (see the testplugin's doc): the binary a test upgrades
// to, which the environment, the same for both, could not tell apart.
func variant(t *testing.T, modes string) string {
	t.Helper()
	return copyAs(t, servetest.Build(t, plugin), "testplugin--"+modes)
}

// copyAs copies the binary bin to a file named name.
func copyAs(t *testing.T, bin, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// cleanups returns, per mount ID, how often the plugin's Cleanup ran, as
// the test plugin records it in its TESTPLUGIN_CLEANUP_FILE.
func cleanups(t *testing.T, file string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, line := range strings.Fields(strings.ReplaceAll(string(b), "cleanup ", "")) {
		n[line]++
	}
	return n
}

// perMount is cleanups' counts for the mounts ms, in their order; on a
// real host, which does not show the ID it gives a mount's backend, the
// counts of the IDs in the host's form (UUIDs, with dashes), sorted: the
// metadata-mode mount of servetest's probe of each binary (an ID without
// dashes) is none of the host's mounts. In the emulation an ID that is
// none of ms's counts as a failure.
func perMount(t *testing.T, p *servetest.Plugin, file string, ms ...*servetest.Mount) []int {
	t.Helper()
	got := cleanups(t, file)
	var n []int
	if p.Host().Real {
		for id, c := range got {
			if strings.Contains(id, "-") {
				n = append(n, c)
			}
		}
		// Mounts never cleaned up wrote nothing: zeros first.
		for len(n) < len(ms) {
			n = append(n, 0)
		}
		slices.Sort(n)
		return n
	}
	for _, m := range ms {
		n = append(n, got[m.ID])
		delete(got, m.ID)
	}
	if len(got) > 0 {
		t.Errorf("Cleanup ran for IDs of no mount: %v", got)
	}
	return n
}

// catalogVersions lists the versions of the plugin name that p's real
// host has in its catalog, as `vault plugin list` shows them; nil in the
// emulation, which has no catalog.
func catalogVersions(t *testing.T, p *servetest.Plugin, name string) []string {
	t.Helper()
	h := p.Host()
	if !h.Real {
		return nil
	}
	req, err := http.NewRequest("GET", h.Addr+"/v1/sys/plugins/catalog", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", h.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Detailed []struct {
				Name, Version string
			} `json:"detailed"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("listing the catalog: %d, %v", resp.StatusCode, err)
	}
	var versions []string
	for _, e := range body.Data.Detailed {
		if e.Name == name {
			versions = append(versions, e.Version)
		}
	}
	slices.Sort(versions)
	return versions
}

func writeKV(t *testing.T, m *servetest.Mount, key, value string) {
	t.Helper()
	if _, err := m.Write(context.Background(), "kv/"+key, map[string]any{"value": value}); err != nil {
		t.Fatalf("writing %s on %s: %v", key, m.MountPoint, err)
	}
}

func readKV(t *testing.T, m *servetest.Mount, key string) string {
	t.Helper()
	resp, err := m.Read(context.Background(), "kv/"+key)
	if err != nil {
		t.Fatalf("reading %s on %s: %v", key, m.MountPoint, err)
	}
	v, _ := resp.Data["value"].(string)
	return v
}

func runningVersion(m *servetest.Mount) string {
	return m.Backend.(logical.PluginVersioner).PluginVersion().Version
}

// skipIfEmulationOnly skips t when err says that the real host HostEnv
// names does not play what the test asked for.
func skipIfEmulationOnly(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, servetest.ErrEmulationOnly) {
		t.Skip(err)
	}
}

// identity is what a Mount keeps across a reload or an upgrade.
func identity(m *servetest.Mount) [4]string {
	return [4]string{m.ID, m.MountPoint, m.MountAccessor, m.MountType}
}

// An upgrade moves every mount to the new binary: the same Mount values,
// storage, identity and leases; the plugin's Cleanup once per mount for
// the old instances; the new binary's version from then on.
func TestUpgrade(t *testing.T) {
	v1, v2 := variant(t, "version"), variant(t, "version2")
	marker := filepath.Join(t.TempDir(), "cleanup")
	ctx := context.Background()
	p := servetest.Start(t, v1, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
	a, b := p.Mount(t, nil), p.Mount(t, nil)
	writeKV(t, a, "k", "in a")
	writeKV(t, b, "k", "in b")
	lease, err := a.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	before, pid := [][4]string{identity(a), identity(b)}, p.PID()
	if v := runningVersion(a); v != "v1.2.3" {
		t.Fatalf("v1 reports %q", v)
	}

	if err := p.Upgrade(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if p.PID() == pid || p.Exited() {
		t.Errorf("PID %d after the upgrade, %d before; exited %v", p.PID(), pid, p.Exited())
	}
	if got := perMount(t, p, marker, a, b); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("Cleanup calls per mount = %v, want one each", got)
	}
	if after := [][4]string{identity(a), identity(b)}; !slices.Equal(before, after) {
		t.Errorf("mount identity %v after the upgrade, %v before", after, before)
	}
	for m, want := range map[*servetest.Mount]string{a: "in a", b: "in b"} {
		if v := runningVersion(m); v != "v2.0.0" {
			t.Errorf("%s reports %q after the upgrade", m.MountPoint, v)
		}
		if got := readKV(t, m, "k"); got != want {
			t.Errorf("%s reads %q after the upgrade, want %q", m.MountPoint, got, want)
		}
	}
	// The lease v1 issued is renewed by v2's handler.
	if _, err := a.Renew(ctx, lease.Secret.LeaseID, time.Hour); err != nil {
		t.Errorf("renewing v1's lease through v2: %v", err)
	}
	if log, err := a.Read(ctx, "lease-log/web"); err != nil || log.Data["renew_count"] != float64(1) {
		t.Errorf("v2's renew handler: %v, %v", log, err)
	}
	// The new process serves new mounts too.
	c := p.Mount(t, nil)
	writeKV(t, c, "k", "new")

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got := perMount(t, p, marker, a, b, c)
	if slices.Sort(got); !slices.Equal(got, []int{1, 2, 2}) {
		t.Errorf("Cleanup calls per mount after Close = %v, want two each for the mounts v1 had (v1's, v2's), one for v2's", got)
	}
}

// A reload restarts the same binary: each mount's Cleanup once, state
// kept, a new process.
func TestReload(t *testing.T) {
	bin := servetest.Build(t, plugin)
	marker := filepath.Join(t.TempDir(), "cleanup")
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
	a, b := p.Mount(t, nil), p.Mount(t, nil)
	writeKV(t, a, "k", "kept")
	pid := p.PID()
	if err := p.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.PID() == pid {
		t.Error("the same process after Reload")
	}
	if got := perMount(t, p, marker, a, b); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("Cleanup calls per mount = %v, want one each", got)
	}
	if got := readKV(t, a, "k"); got != "kept" {
		t.Errorf("read %q after Reload", got)
	}
	// Upgrade to the binary p runs is Reload.
	if err := p.Upgrade(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	if got := perMount(t, p, marker, a, b); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("Cleanup calls per mount after a second reload = %v, want two each", got)
	}
}

// An upgrade to a binary that does not start, or whose mounts cannot be
// set up, fails with an error naming the binary and the version it
// reports, and leaves the plugin serving the old binary.
func TestUpgradeFails(t *testing.T) {
	v1 := variant(t, "version")
	for _, tc := range []struct {
		name, v2 string
		mounts   int
		want     []string // in the message
		check    func(*testing.T, error)
	}{
		{
			name: "missing binary", v2: filepath.Join(t.TempDir(), "no-such-plugin"), mounts: 1,
			want: []string{"version unknown: it did not start", "no such file"},
			check: func(t *testing.T, err error) {
				var se *servetest.StartError
				if !errors.As(err, &se) || !strings.HasSuffix(se.Binary, "no-such-plugin") {
					t.Errorf("errors.As(*StartError): %#v", se)
				}
			},
		},
		{
			name: "exits at start", v2: variant(t, "badversion"), mounts: 1,
			want: []string{"version unknown: it did not start", "not-a-version"},
			check: func(t *testing.T, err error) {
				var se *servetest.StartError
				if !errors.As(err, &se) || !strings.Contains(se.Cause, "not-a-version") {
					t.Errorf("errors.As(*StartError): %#v", se)
				}
			},
		},
		{
			name: "setup fails", v2: variant(t, "version2,factoryerr"), mounts: 2,
			want: []string{"version unknown: no mount was set up on it", "the factory was told to fail"},
		},
		{
			name: "does not multiplex", v2: variant(t, "version2,nomux"), mounts: 2,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, servetest.ErrNotMultiplexed) {
					t.Errorf("not ErrNotMultiplexed: %v", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "cleanup")
			p := servetest.Start(t, v1, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
			var mounts []*servetest.Mount
			for range tc.mounts {
				m := p.Mount(t, nil)
				writeKV(t, m, "k", "v1's "+m.ID)
				mounts = append(mounts, m)
			}
			if p.Host().Real && tc.name == "does not multiplex" {
				t.Skip("a real host runs a process per mount of a plugin that does not multiplex: the upgrade succeeds there")
			}
			err := p.Upgrade(context.Background(), tc.v2)
			if err == nil {
				t.Fatal("the upgrade succeeded")
			}
			msg := err.Error()
			first, _, _ := strings.Cut(msg, "\n")
			// The plugin's name: on a real host its catalog entry's.
			name := mounts[0].MountType
			for _, want := range append([]string{"upgrading the plugin " + name + " to " + tc.v2, "serves " + v1 + " (v1.2.3) again"}, tc.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%v", want, msg)
				}
			}
			if !strings.Contains(first, "serves "+v1) {
				t.Errorf("the first line does not say what serves: %q", first)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
			// v1 serves every mount again, with its state.
			for _, m := range mounts {
				if v := runningVersion(m); v != "v1.2.3" {
					t.Errorf("%s reports %q after the failed upgrade", m.MountPoint, v)
				}
				if got := readKV(t, m, "k"); got != "v1's "+m.ID {
					t.Errorf("%s reads %q after the failed upgrade", m.MountPoint, got)
				}
			}
			// The reload's Cleanup of v1's instances, once. On a real
			// host a binary that cannot be read is refused before the
			// host is asked: nothing was reloaded, nothing cleaned up.
			// Otherwise the host's failed reload cleans v1's instance
			// up, and the undoing's reload cleans up the v1 instance the
			// host may have started again in between for a request of
			// its own (Vault 1.21.0 did so in one run of several): once
			// or twice.
			got := perMount(t, p, marker, mounts...)
			switch {
			case !p.Host().Real:
				if !slices.Equal(got, slices.Repeat([]int{1}, tc.mounts)) {
					t.Errorf("Cleanup calls per mount = %v, want one each", got)
				}
			case tc.name == "missing binary":
				if !slices.Equal(got, slices.Repeat([]int{0}, tc.mounts)) {
					t.Errorf("Cleanup calls per mount = %v, want none", got)
				}
			default:
				if got[0] < 1 || got[len(got)-1] > 2 {
					t.Errorf("Cleanup calls per mount = %v, want one or two each", got)
				}
			}
			if p.Exited() {
				t.Error("no process serves")
			}
			// Nothing of the new binary is left registered.
			if got := catalogVersions(t, p, name); p.Host().Real && !slices.Equal(got, []string{"v1.2.3"}) {
				t.Errorf("the catalog holds %s at %v after the failed upgrade, want v1.2.3 alone", name, got)
			}
		})
	}
}

// After a kill, the next request through a Mount's request methods starts
// the binary again and sets the mount up anew on the same storage, as
// Vault's plugin backend does; the raw HandleRequest does not. Leases
// and the other mounts carry on.
func TestKillThenRequest(t *testing.T) {
	servetest.SkipOnRealHost(t, "the raw HandleRequest and the restart on the first request after a Kill")
	bin := servetest.Build(t, plugin)
	marker := filepath.Join(t.TempDir(), "cleanup")
	ctx := context.Background()
	p := servetest.Start(t, bin, servetest.WithEnv("TESTPLUGIN_CLEANUP_FILE="+marker))
	a, b := p.Mount(t, nil), p.Mount(t, nil)
	writeKV(t, a, "k", "in a")
	writeKV(t, b, "k", "in b")
	lease, err := a.Write(ctx, "lease/web", nil)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.PID()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Exited() = false once Kill returned")
	}
	if _, err := a.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "info", Storage: a.Storage}); err == nil {
		t.Fatal("the raw HandleRequest to a killed plugin succeeded")
	}
	if got := readKV(t, a, "k"); got != "in a" {
		t.Errorf("read %q after the restart", got)
	}
	if p.Exited() || p.PID() == pid {
		t.Errorf("after the restart: exited %v, PID %d (killed: %d)", p.Exited(), p.PID(), pid)
	}
	// b joins the new process on its own next request; a write makes an
	// existence check first, which restarts as a request does.
	writeKV(t, b, "k2", "after")
	if got := readKV(t, b, "k"); got != "in b" {
		t.Errorf("b read %q after the restart", got)
	}
	if _, err := a.Renew(ctx, lease.Secret.LeaseID, time.Hour); err != nil {
		t.Errorf("renewing the lease after the restart: %v", err)
	}
	// The dead process's Cleanup never ran: it was gone.
	if got := cleanups(t, marker); len(got) != 0 {
		t.Errorf("Cleanup ran for %v", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cleanups(t, marker); got[a.ID] != 1 || got[b.ID] != 1 {
		t.Errorf("Cleanup calls per mount ID after Close = %v, want one each", got)
	}
}

// Requests that find the process gone at the same time restart it once,
// as Vault's canary makes them: each mount is set up anew once, and every
// request is answered.
func TestKillThenConcurrentRequests(t *testing.T) {
	servetest.SkipOnRealHost(t, "the raw HandleRequest and the restart on the first request after a Kill")
	bin := servetest.Build(t, plugin)
	p := servetest.Start(t, bin)
	mounts := []*servetest.Mount{p.Mount(t, nil), p.Mount(t, nil)}
	for _, m := range mounts {
		writeKV(t, m, "k", m.ID)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	const perMount = 8
	errs := make(chan error, perMount*len(mounts))
	for _, m := range mounts {
		for range perMount {
			go func() {
				resp, err := m.Read(context.Background(), "kv/k")
				if err == nil && resp.Data["value"] != m.ID {
					err = errors.New("read " + fmt.Sprint(resp.Data["value"]) + ", want " + m.ID)
				}
				errs <- err
			}()
		}
	}
	for range perMount * len(mounts) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// Every mount is on the one process that serves now: the raw call,
	// which never restarts anything, reaches it.
	for _, m := range mounts {
		resp, err := m.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "info", Storage: m.Storage})
		if err != nil {
			t.Fatalf("%s is not on a live process: %v", m.MountPoint, err)
		}
		if pid := resp.Data["pid"]; pid != fmt.Sprint(p.PID()) {
			t.Errorf("%s is served by process %v, the plugin's is %d", m.MountPoint, pid, p.PID())
		}
	}
}
