package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	version "github.com/hashicorp/go-version"
	"google.golang.org/grpc"

	"github.com/plugkit/vaultplugin"
	"github.com/plugkit/vaultplugin/internal/hostenv"
	"github.com/plugkit/vaultplugin/logging"
)

// FuzzCommandLine feeds any argv (NUL-separated) through the plugin's flag
// parsing, as a person and as a host would start it, with an author's
// flags defined next to Vault's. It must never panic; every rejection wraps
// ErrUsage (exit 2) and is reported on exactly one line where its reader
// is: stderr for a person, stdout (Vault's API error) for a host.
func FuzzCommandLine(f *testing.F) {
	for _, args := range []string{
		"",
		"-tls-skip-verify",
		"-tls-skip-verify=maybe",
		"-ca-cert=/etc/vault/ca.pem\x00-tls-server-name=vault.example",
		"-ca-certs=/tmp/ca.pem",
		"-client-cert=/tmp/c.pem",
		"-client-cert=/tmp/c.pem\x00-client-key=/tmp/k.pem",
		"serve",
		"--\x00-tls-skip-verify",
		"-greeting=hi\x00-n=3",
		"-n=not-a-number",
		"-version",
		"-help",
		"-describe",
		"-describe\x00-version",
		"-h",
		"--ca-path\x00/etc/ssl",
		"-=x",
		"-",
		"---x",
		"-ca-cert",
		"-a\nb",
		"-tls-skip-verify=\n",
	} {
		f.Add(args, false)
		f.Add(args, true)
	}
	f.Fuzz(func(t *testing.T, argv string, hosted bool) {
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		if hosted {
			// -describe hashes the test binary; a person's -describe is
			// covered by the binary tests, so spare the fuzzer the cost.
			for _, a := range args {
				if strings.Contains(a, "describe") {
					t.Skip()
				}
			}
		}
		var stdout, stderr bytes.Buffer
		env := map[string]string{}
		if hosted {
			env[hostenv.EnvBackendCookie] = hostenv.BackendCookieValue
		}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		c := NewConfig()
		c.Name = "fuzz-plugin"
		c.Stdout, c.Stderr = &stdout, &stderr
		c.Lookup = lookup
		c.Logger = logging.New(&logging.Options{Output: &stderr, Lookup: lookup})
		c.Args = args
		if c.Args == nil {
			c.Args = []string{}
		}
		if err := errors.Join(c.SetVersion("v1.0.0"), c.AddFlags(func(fs *flag.FlagSet) {
			fs.String("greeting", "hello", "an author's string flag")
			fs.Int("n", 1, "an author's int flag")
		})); err != nil {
			t.Fatal(err)
		}
		s := &server{Config: c, plugin: fakePlugin{}, host: hostenv.FromEnv(lookup)}
		done, err := s.parseFlags(context.Background())

		switch {
		case err != nil:
			if !errors.Is(err, vaultplugin.ErrUsage) {
				t.Fatalf("rejection %q does not wrap ErrUsage", err)
			}
			if done {
				t.Fatal("done with an error")
			}
			if hosted {
				assertOneLine(t, "stdout", stdout.String())
				for _, l := range strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n") {
					if !json.Valid([]byte(l)) {
						t.Fatalf("stderr line is not a JSON record: %q", l)
					}
				}
			} else {
				assertOneLine(t, "stderr", stderr.String())
				if stdout.Len() != 0 {
					t.Fatalf("a person's usage error printed on stdout: %q", stdout.String())
				}
			}
		case done:
			// -help, -version or -describe: answered on stdout.
			if stdout.Len() == 0 {
				t.Fatal("done, but nothing printed")
			}
		default:
			if stdout.Len() != 0 {
				t.Fatalf("accepted, but printed on stdout: %q", stdout.String())
			}
		}
	})
}

func assertOneLine(t *testing.T, name, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("%s must be exactly one line, got %q", name, s)
	}
}

// fakePlugin is a backend kind that serves nothing, for the tests of
// what happens before serving.
type fakePlugin struct{}

func (fakePlugin) Kind() hostenv.Kind { return hostenv.Backend }
func (fakePlugin) Factory() any       { return nil }
func (fakePlugin) Type(context.Context) string {
	return "secret"
}
func (fakePlugin) GRPCOptions() []grpc.ServerOption { return nil }
func (fakePlugin) HostReloads() bool                { return false }
func (fakePlugin) Sets(*Instances, Plan) (map[int]goplugin.PluginSet, error) {
	return nil, errors.New("fakePlugin does not serve")
}

// FuzzVersion: a version Vault's catalog accepts is reported exactly as
// Vault normalises it ("v" + version.NewSemver(v).String()), which
// round-trips; anything else is WithVersion's error naming the value.
func FuzzVersion(f *testing.F) {
	for _, v := range []string{
		"1.2.3", "v1.2.3", "V1.2.3", "1.2", "1", "v0.0.0", "1.2.3-rc.1", "1.2.3+meta", "1.2.3-rc.1+build.5",
		"01.02.03", "1.2.3.4", "", " 1.2.3", "1.2.3 ", "v", "vv1.2.3", "1.2.3-", "1.2.3+", "1..3",
		"99999999999999999999.0.0", "1.2.3-ü", "not-a-version", "1.2.3\n", "1.2.3-0.0", "1.0.0-alpha.beta",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		norm, err := NormalizeVersion(v)
		c := &Config{}
		optErr := c.SetVersion(v)
		if (err == nil) != (optErr == nil) {
			t.Fatalf("NormalizeVersion and WithVersion disagree on %q: %v / %v", v, err, optErr)
		}
		if err != nil {
			if !strings.HasPrefix(optErr.Error(), fmt.Sprintf("WithVersion(%q): ", v)) {
				t.Fatalf("WithVersion's error does not name the value: %v", optErr)
			}
			return
		}
		if c.Version != (Version{Value: norm, Source: VersionFromOption}) {
			t.Fatalf("WithVersion(%q) set %+v, want %q", v, c.Version, norm)
		}
		if !strings.HasPrefix(norm, "v") {
			t.Fatalf("%q normalised to %q, without the v", v, norm)
		}
		// What Vault's catalog does with the registered -version.
		sv, err := version.NewSemver(norm)
		if err != nil {
			t.Fatalf("Vault would refuse %q (from %q): %v", norm, v, err)
		}
		if "v"+sv.String() != norm {
			t.Fatalf("%q (from %q) does not round-trip: Vault stores %q", norm, v, "v"+sv.String())
		}
		if again, err := NormalizeVersion(norm); err != nil || again != norm {
			t.Fatalf("normalising %q again gives %q, %v", norm, again, err)
		}
		if orig, err := version.NewSemver(v); err != nil || !orig.Equal(sv) {
			t.Fatalf("%q normalised to %q, a different version (%v)", v, norm, err)
		}
	})
}
