package store

import (
	"errors"
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	long := strings.Repeat("x", 20<<20)
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", ClipLen), strings.Repeat("a", ClipLen)},
		{strings.Repeat("a", ClipLen+1), strings.Repeat("a", ClipLen) + "... (201 bytes in all)"},
		// Not cut inside a character: "é" is 2 bytes, 199 a's then é
		// straddles byte 200.
		{strings.Repeat("a", ClipLen-1) + "é" + "b", strings.Repeat("a", ClipLen-1) + "... (202 bytes in all)"},
		{long, strings.Repeat("x", ClipLen) + "... (20971520 bytes in all)"},
	}
	for _, tc := range tests {
		if got := Clip(tc.in); got != tc.want {
			t.Errorf("Clip(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

// TestShardErrorClipsUntrustedText: a 20 MiB value in a problem gives a
// line of a few hundred bytes, not 20 MB.
func TestShardErrorClipsUntrustedText(t *testing.T) {
	big := strings.Repeat("v", 20<<20)
	e := &ShardError{Shard: "app:counter:1:metric:" + big, Offset: -1, Reason: "bad value " + big, Err: errors.New("parse " + big)}
	msg := e.Error()
	if len(msg) > 4*ClipLen || strings.Count(msg, "(20971541 bytes in all)") != 1 || !strings.Contains(msg, "bytes in all)") {
		t.Errorf("error of %d bytes: %.700s", len(msg), msg)
	}
}

func TestQuoteClip(t *testing.T) {
	long := strings.Repeat("x", 20<<20)
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{`say "hi"`, `"say \"hi\""`},
		{strings.Repeat("a", ClipLen/2), `"` + strings.Repeat("a", ClipLen/2) + `"`},
		{strings.Repeat("a", ClipLen/2+1), `"` + strings.Repeat("a", ClipLen/2) + `"... (101 bytes in all)`},
		{strings.Repeat("a", ClipLen/2-1) + "é", `"` + strings.Repeat("a", ClipLen/2-1) + `"... (101 bytes in all)`},
		{long, `"` + strings.Repeat("x", ClipLen/2) + `"... (20971520 bytes in all)`},
	} {
		if got := QuoteClip(tc.in); got != tc.want {
			t.Errorf("QuoteClip(%d bytes) = %q, want %q", len(tc.in), got, tc.want)
		}
	}
}

func TestNameText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"gunicorn:counter:4100:metric:0123", "gunicorn:counter:4100:metric:0123"},
		{"counter_4100.db", "counter_4100.db"},
		{"héllo_1.db", "héllo_1.db"},
		{"gunicorn:counter:41\xff00:metric:0123", `"gunicorn:counter:41\xff00:metric:0123"`},
		{"counter_a\nb.db", `"counter_a\nb.db"`},
		{"counter_a\tb.db", `"counter_a\tb.db"`},
		{"counter_\u0085.db", `"counter_\u0085.db"`},
		{"\ufffd.db", "\ufffd.db"}, // valid UTF-8: as it is (a byte that is not UTF-8 reads \xff)
	}
	for _, tc := range tests {
		if got := NameText(tc.in); got != tc.want {
			t.Errorf("NameText(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
