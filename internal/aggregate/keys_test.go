package aggregate

import (
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestHistogramLabelID: a bucket's prep hashes the label id of its labels
// but le as labelIDOf makes it, and isHid tells that id from every other.
func TestHistogramLabelID(t *testing.T) {
	lbl := func(kv ...string) []store.Label {
		var ls []store.Label
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, store.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	tests := []struct {
		name   string
		labels []store.Label
		others []string // ids isHid must refuse
	}{
		{"le alone", lbl("le", "0.5"), []string{"le\xfe0.5\xfd", "x"}},
		{"le first", lbl("le", "+Inf", "method", "GET"), []string{"", "method\xfeGET\xfdx", "method\xfeGE\xfd", "method\xfeGET"}},
		{"le between", lbl("a", "1", "le", "1.0", "z", "2"), []string{"a\xfe1\xfd", "a\xfe1\xfdz\xfe2\xfdz\xfe2\xfd", "a\xfe1\xfdz\xfe3\xfd", "b\xfe1\xfdz\xfe2\xfd"}},
		{"le last, empty values", lbl("a", "", "b", "", "le", "1e+06"), []string{"a\xfe\xfdb\xfe", "a\xfe\xfd", "\xfe\xfdb\xfe\xfd"}},
		{"separator bytes in values", lbl("a", "x\xfdy", "le", "2"), []string{"a\xfex\xfd", "a\xfex\xfdy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(&store.Key{Name: "h_bucket", Labels: tt.labels})
			if !p.leOK {
				t.Fatal("no le found")
			}
			want := labelIDOf("", "", p.labels, p.leIdx)
			if p.hid() != want {
				t.Errorf("hid %q, want %q", p.hid(), want)
			}
			if p.hidHash != store.HashText(want) {
				t.Errorf("hidHash %x, want HashText(%q) %x", p.hidHash, want, store.HashText(want))
			}
			if !p.isHid(want) {
				t.Errorf("isHid(%q) false", want)
			}
			for _, o := range tt.others {
				if p.isHid(o) {
					t.Errorf("isHid(%q) true; the id is %q", o, want)
				}
			}
		})
	}
}
