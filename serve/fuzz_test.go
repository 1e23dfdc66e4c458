package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	version "github.com/hashicorp/go-version"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/compat"
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
			env[compat.EnvBackendCookie] = compat.BackendCookieValue
		}
		lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		c := newConfig(compat.Backend)
		c.name = "fuzz-plugin"
		c.stdout, c.stderr = &stdout, &stderr
		c.lookup = lookup
		c.logger = logging.New(&logging.Options{Output: &stderr, Lookup: lookup})
		opts := []Option{
			WithArgs(args...),
			WithVersion("v1.0.0"),
			WithFlags(func(fs *flag.FlagSet) {
				fs.String("greeting", "hello", "an author's string flag")
				fs.Int("n", 1, "an author's int flag")
			}),
		}
		if err := c.applyOptions(opts); err != nil {
			t.Fatal(err)
		}
		host := compat.FromEnv(lookup)
		done, err := c.parseFlags(context.Background(), backendKind{factory: fuzzFactory}, host)

		switch {
		case err != nil:
			if !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
				t.Fatalf("rejection %q does not wrap ErrUsage (exit %d)", err, ExitCode(err))
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

func fuzzFactory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{BackendType: logical.TypeLogical}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
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
		norm, err := normalizeVersion(v)
		c := &config{}
		optErr := WithVersion(v)(c)
		if (err == nil) != (optErr == nil) {
			t.Fatalf("normalizeVersion and WithVersion disagree on %q: %v / %v", v, err, optErr)
		}
		if err != nil {
			if !strings.HasPrefix(optErr.Error(), fmt.Sprintf("WithVersion(%q): ", v)) {
				t.Fatalf("WithVersion's error does not name the value: %v", optErr)
			}
			return
		}
		if c.version != norm || c.versionSource != "WithVersion" {
			t.Fatalf("WithVersion(%q) set %q (%s), want %q", v, c.version, c.versionSource, norm)
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
		if again, err := normalizeVersion(norm); err != nil || again != norm {
			t.Fatalf("normalising %q again gives %q, %v", norm, again, err)
		}
		if orig, err := version.NewSemver(v); err != nil || !orig.Equal(sv) {
			t.Fatalf("%q normalised to %q, a different version (%v)", v, norm, err)
		}
	})
}
