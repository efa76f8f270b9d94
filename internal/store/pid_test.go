package store

import (
	"bytes"
	"slices"
	"testing"
)

func TestDecimalPID(t *testing.T) {
	for _, tc := range []struct {
		pid  string
		want bool
	}{
		{"7", true}, {"4100", true}, {"9223372036854775807", true},
		{"9223372036854775808", false}, {"12345678901234567890", false},
		{"", false}, {"0", false}, {"0042", false}, {"-5", false}, {"+5", false},
		{"1e3", false}, {"web1-12", false}, {"archive", false}, {"4 ", false}, {"٣", false},
	} {
		if got := DecimalPID(tc.pid); got != tc.want {
			t.Errorf("DecimalPID(%q) = %v, want %v", tc.pid, got, tc.want)
		}
		// ProcessAlive checks exactly the decimal pids.
		if !tc.want && ProcessAlive(tc.pid) != AliveUnknown {
			t.Errorf("ProcessAlive(%q) checked a pid that is not decimal", tc.pid)
		}
	}
}

func TestComparePIDs(t *testing.T) {
	// Decimal pids by number, then the rest by text, as Python's sorted()
	// orders str.
	want := []string{"7", "100", "4100", "9223372036854775807", "", "-5", "0", "0042", "1e3", "9223372036854775808", "archive", "web1-12", "web10", "web2", "é"}
	for _, perm := range [][]string{
		slices.Clone(want),
		{"web2", "é", "0042", "archive", "-5", "100", "", "1e3", "9223372036854775808", "7", "web1-12", "0", "9223372036854775807", "web10", "4100"},
	} {
		slices.SortFunc(perm, ComparePIDs)
		if !slices.Equal(perm, want) {
			t.Errorf("sorted: %q\nwant     %q", perm, want)
		}
		keys := make([]string, len(perm))
		for i, p := range perm {
			keys[i] = string(AppendPIDKey(nil, p))
		}
		if !slices.IsSortedFunc(keys, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }) {
			t.Errorf("AppendPIDKey does not keep ComparePIDs' order")
		}
	}
	for _, a := range want {
		for _, b := range want {
			if ComparePIDs(a, b) != -ComparePIDs(b, a) || (ComparePIDs(a, b) == 0) != (a == b) {
				t.Errorf("ComparePIDs(%q, %q) = %d, reverse %d", a, b, ComparePIDs(a, b), ComparePIDs(b, a))
			}
		}
	}
}
