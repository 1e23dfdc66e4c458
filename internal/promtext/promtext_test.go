package promtext

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `# HELP a_total Things.
# TYPE a_total counter
a_total{m="x\\y\"z\nw",o="r"} 3
a_total{m="b",o="r"} 0
# TYPE h histogram
h_bucket{le="0.1"} 1
h_bucket{le="+Inf"} 2
h_sum 0.3
h_count 2
untyped_thing{a="1", b="2",} 1.5e-3 1700000000000
`
	e, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		Key("a_total", "o", "r", "m", "x\\y\"z\nw"): 3,
		`a_total{m="b",o="r"}`:                      0,
		`h_count`:                                   2,
		`untyped_thing{a="1",b="2"}`:                0.0015,
	} {
		if got, ok := e.Samples[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v; all: %v", k, got, ok, want, e.Samples)
		}
	}
	if f := e.Families["a_total"]; f == nil || f.Help != "Things." || f.Type != "counter" {
		t.Errorf("a_total family = %+v", f)
	}

	for _, bad := range []string{
		"a 1",                                  // no final newline
		"a{m=\"x\"y\"} 1\n",                    // unescaped quote
		"a{m=\"x\\t\"} 1\n",                    // bad escape
		"a{m=\"x\ny\"} 1\n",                    // raw newline
		"a{m=\"\xff\"} 1\n",                    // invalid UTF-8
		"a{m=\"x\"} 1\na{m=\"x\"} 2\n",         // duplicate
		"# TYPE a counter\n# TYPE a counter\n", // second TYPE
		"a 1\nb 1\na{x=\"y\"} 1\n",             // family split
		"a 1\n# TYPE a counter\n",              // TYPE after samples
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",                          // no +Inf
		"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",                       // count differs
		"a{1x=\"y\"} 1\n", // bad label name
		"a x\n",           // bad value
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		} else if strings.Contains(err.Error(), "panic") {
			t.Error(err)
		}
	}
}
