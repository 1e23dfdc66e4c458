package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// Flags count wherever they stand, up to a "--".
func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args       []string
		rest, json string
	}{
		{[]string{"-json", "a"}, "a", "true"},
		{[]string{"a", "-json"}, "a", "true"},
		{[]string{"a", "b", "-json", "c"}, "a b c", "true"},
		{[]string{"a", "--", "-json"}, "a -json", "false"},
		{[]string{"--", "a", "-json"}, "a -json", "false"},
		{[]string{"-json", "--"}, "", "true"},
		{nil, "", "false"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		rest, err := ParseFlags(fs, c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if got := strings.Join(rest, " "); got != c.rest || fs.Lookup("json").Value.String() != c.json {
			t.Errorf("%q: rest %q, -json %v; want %q, %s", c.args, got, *asJSON, c.rest, c.json)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := ParseFlags(fs, []string{"a", "-nope"}); err == nil || err.Error() != "flag provided but not defined: -nope" {
		t.Errorf("an unknown flag after an argument: %v", err)
	}
}
