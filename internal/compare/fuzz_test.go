package compare

import (
	"testing"
)

// FuzzParseOpenMetrics checks that the OpenMetrics reader never panics,
// and that what it accepts names every family and series and compares
// equal to itself. The seed corpus is in testdata/fuzz.
func FuzzParseOpenMetrics(f *testing.F) {
	for _, s := range []string{
		"# EOF\n",
		"# HELP c C\n# TYPE c counter\nc_total{a=\"x\"} 1.0\nc_created 1.7e+09\n# EOF\n",
		"# TYPE h histogram\nh_bucket{le=\"0.5\"} 1.0\nh_bucket{le=\"+Inf\"} 2.0\nh_count 2.0\nh_sum -3.0\n# EOF\n",
		"{\"my.gauge\",\"la.bel\"=\"x\"} 5.0 1700000000.5\n# EOF\n",
		"ex_total 3.0 # {trace_id=\"abc\"} 1.0 1700000000.0\n# EOF\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("fuzz", data, FormatOpenMetrics)
		if err != nil {
			return
		}
		for _, fam := range e.Families {
			if fam.Name == "" {
				t.Fatalf("accepted a family without a name from %q: %+v", data, fam)
			}
			for _, s := range fam.Series {
				if s.Name == "" {
					t.Fatalf("accepted a series without a name from %q: %+v", data, fam)
				}
			}
		}
		if r := Diff(e, e, Options{}); !r.Equal() {
			t.Fatalf("%q differs from itself: %+v", data, r.Diffs)
		}
	})
}
