package store

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseKey checks that ParseKey never panics and that every key it
// accepts survives a re-encoding round trip.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{
		`["a", "a_total", {}, ""]`,
		`["a", "a_total", {"x": "y"}]`,
		`["h", "h_bucket", {"le": "0.5", "r": "caf\u00e9 \ud83d\ude80"}, "help \"q\" \\ \n"]`,
		`["a", "a_total", {"x": "\ud83d"}, "\u007f\u0000"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseKey(text)
		if err != nil {
			return
		}
		if k.Family == "" || k.Name == "" || !utf8.ValidString(k.Help) {
			t.Fatalf("accepted invalid key %q: %+v", text, k)
		}
		enc := EncodeKey(k.Family, k.Name, k.Labels, k.Help)
		k2, err := ParseKey(enc)
		if err != nil {
			t.Fatalf("re-encoded key %q does not parse: %v", enc, err)
		}
		if EncodeKey(k2.Family, k2.Name, k2.Labels, k2.Help) != enc {
			t.Fatalf("encoding not stable for %q", text)
		}
	})
}
