package render

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// FuzzTextRoundTrip checks that any help text, label value and value the
// text writer accepts reads back unchanged through the exposition parser,
// and that the JSON writer's output stays valid JSON.
func FuzzTextRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\n\n", "tab\tcr\r\u2028", "trailing\\", "{a=\"b\",c=d}", "日本🚀"} {
		f.Add(s, s, 1.5)
	}
	f.Add("h", "v", math.Inf(-1))
	f.Add("h", "v", math.NaN())
	f.Fuzz(func(t *testing.T, help, value string, v float64) {
		fams := []aggregate.Family{{Name: "g", Type: store.KindGauge, Help: help, Samples: []aggregate.Sample{
			{Name: "g", Labels: []store.Label{{Name: "l", Value: value}}, Value: v},
		}}}
		var b bytes.Buffer
		if err := Text(&b, fams); err != nil {
			t.Fatal(err)
		}
		e, err := testenv.ParseExposition(b.Bytes())
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, b.String())
		}
		got := e.Families[0]
		if got.Help != help || got.Samples[0].Labels[0].Value != value || !testenv.ValuesEqual(got.Samples[0].Value, v) {
			t.Errorf("round trip changed %q %q %v into %q %q %v", help, value, v, got.Help, got.Samples[0].Labels[0].Value, got.Samples[0].Value)
		}
		b.Reset()
		if err := JSON(&b, fams); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b.Bytes()) {
			t.Errorf("invalid JSON %q", b.String())
		}
		if utf8.ValidString(value) {
			var doc struct {
				Families []struct {
					Samples []struct{ Labels map[string]string }
				}
			}
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc.Families[0].Samples[0].Labels["l"] != value {
				t.Errorf("JSON label %q did not round trip: %v", value, err)
			}
		}
	})
}
