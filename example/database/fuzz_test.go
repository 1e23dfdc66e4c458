package htpasswd

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse reads arbitrary file text. Parse never fails or panics; what
// it renders parses back to the same text and the same users, hashes and
// expirations; and a user the plugin could create (a name validName
// accepts) survives a write and a re-read with its hash and expiration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"\n",
		"alice:$apr1$x$y\n",
		"# managed by hand\nalice:$apr1$x$y\n\nnot an entry\n#vault-expires v-a 2026-01-02T03:04:05Z\nv-a:$2y$05$h\n",
		"bob:{SHA}abc=\r\ncarol:plain\r\n",
		"#vault-expires a 2026-01-02T03:04:05+02:00\n#vault-expires b not-a-time\n#vault-expires c\n",
		"#vault-expires x 9999-12-31T23:59:59-23:59\n",
		":nouser\nuser:\nuser:with:colons\n",
		"no trailing newline",
		"dup:1\ndup:2\n",
	} {
		f.Add(s, "v-web-reader-a1B2c3D4e5", "$2y$05$abcdefghijklmnopqrstuv", int64(1767323045))
	}
	f.Add("", "a b", "h", int64(0))
	f.Add("", "#x", "h", int64(-62135596800))
	f.Fuzz(func(t *testing.T, text, user, hash string, unix int64) {
		c := Parse(text)
		out := c.String()
		if out != "" && !strings.HasSuffix(out, "\n") {
			t.Fatalf("rendered text does not end in a newline: %q", out)
		}
		c2 := Parse(out)
		if again := c2.String(); again != out {
			t.Fatalf("not stable:\n%q\n%q", out, again)
		}
		if strings.Join(c.Users(), "\x00") != strings.Join(c2.Users(), "\x00") {
			t.Fatalf("users changed: %q → %q", c.Users(), c2.Users())
		}
		for _, u := range c.Users() {
			h1, _ := c.Hash(u)
			h2, _ := c2.Hash(u)
			e1, ok1 := c.Expiration(u)
			e2, ok2 := c2.Expiration(u)
			if h1 != h2 || ok1 != ok2 || !e1.Equal(e2) {
				t.Fatalf("user %q changed: %q %v %v → %q %v %v", u, h1, e1, ok1, h2, e2, ok2)
			}
		}

		// A user the plugin may write: Set and SetExpiration, render,
		// re-read.
		if validName(user) != nil || strings.ContainsAny(hash, "\r\n") {
			return
		}
		exp := time.Unix(unix%(400*365*24*3600), 0).UTC().Truncate(time.Second)
		c2.Set(user, hash)
		c2.SetExpiration(user, exp)
		c3 := Parse(c2.String())
		if h, ok := c3.Hash(user); !ok || h != hash {
			t.Fatalf("user %q written with hash %q reads back %q, %v", user, hash, h, ok)
		}
		if !exp.IsZero() {
			if e, ok := c3.Expiration(user); !ok || !e.Equal(exp) {
				t.Fatalf("user %q written with expiration %v reads back %v, %v\n%s", user, exp, e, ok, c2.String())
			}
		}
		c3.Delete(user)
		if c4 := Parse(c3.String()); c4.Has(user) {
			t.Fatalf("user %q still there after Delete:\n%s", user, c3.String())
		}
		if _, ok := Parse(c3.String()).Expiration(user); ok {
			t.Fatalf("user %q's expiration still there after Delete:\n%s", user, c3.String())
		}
	})
}
