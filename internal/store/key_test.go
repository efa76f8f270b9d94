package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type pyKeyCase struct {
	Family string            `json:"family"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Help   *string           `json:"help"`
	Text   string            `json:"text"`
}

func readPyKeys(t *testing.T) []pyKeyCase {
	t.Helper()
	f, err := os.Open("testdata/keys.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pyKeyCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c pyKeyCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) < 10 {
		t.Fatalf("only %d keys in testdata/keys.jsonl", len(out))
	}
	return out
}

func labelsOf(m map[string]string) []Label {
	var ls []Label
	for k, v := range m {
		ls = append(ls, Label{k, v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// TestKeyCodecAgainstPython checks encoding and parsing against key texts
// made by Python's json.dumps(..., sort_keys=True) (testdata/keys.jsonl).
func TestKeyCodecAgainstPython(t *testing.T) {
	for _, c := range readPyKeys(t) {
		k, err := ParseKey(c.Text)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", c.Text, err)
			continue
		}
		want := labelsOf(c.Labels)
		if k.Family != c.Family || k.Name != c.Name || len(k.Labels) != len(want) {
			t.Errorf("ParseKey(%q) = %+v", c.Text, k)
			continue
		}
		for i := range want {
			if k.Labels[i] != want[i] {
				t.Errorf("ParseKey(%q) label %d = %q, want %q", c.Text, i, k.Labels[i], want[i])
			}
		}
		if c.Help == nil {
			if !k.Legacy || k.Help != LegacyHelp {
				t.Errorf("legacy key %q: Legacy=%v Help=%q", c.Text, k.Legacy, k.Help)
			}
			wantText := strings.TrimSuffix(c.Text, "]") + `, "Multiprocess metric"]`
			if got := CanonicalKeyText(k); got != wantText {
				t.Errorf("CanonicalKeyText = %q, want %q", got, wantText)
			}
			continue
		}
		if k.Help != *c.Help || k.Legacy {
			t.Errorf("ParseKey(%q) help = %q", c.Text, k.Help)
		}
		if got := EncodeKey(c.Family, c.Name, want, *c.Help); got != c.Text {
			t.Errorf("EncodeKey = %q\nwant       %q", got, c.Text)
		}
		// Unsorted input must be sorted the way Python sorts keys.
		rev := append([]Label(nil), want...)
		sort.Slice(rev, func(i, j int) bool { return rev[i].Name > rev[j].Name })
		if got := EncodeKey(c.Family, c.Name, rev, *c.Help); got != c.Text {
			t.Errorf("EncodeKey(unsorted) = %q\nwant                 %q", got, c.Text)
		}
		if CanonicalKeyText(k) != c.Text {
			t.Errorf("CanonicalKeyText changed a 4-element key")
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"not a list", `{"a": 1}`},
		{"number", `[1, "a", {}, ""]`},
		{"unterminated", `["a", "a_total", {"x": "y"}, "help`},
		{"missing labels", `["a", "a_total"]`},
		{"label value not string", `["a", "a_total", {"x": 1}, ""]`},
		{"trailing", `["a", "a_total", {}, ""] x`},
		{"five elements", `["a", "a_total", {}, "", ""]`},
		{"bad escape", `["a", "a_total", {}, "\q"]`},
		{"bad unicode escape", `["a", "a_total", {}, "\u12"]`},
		{"raw control", "[\"a\", \"a_total\", {}, \"\x01\"]"},
		{"invalid utf8", "[\"a\", \"a_total\", {}, \"\xff\"]"},
		{"empty family", `["", "a_total", {}, ""]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := ParseKey(tt.text); err == nil {
				t.Fatalf("ParseKey(%q) = %+v, want error", tt.text, k)
			}
		})
	}
}

func TestParseKeySurrogates(t *testing.T) {
	k, err := ParseKey(`["a", "a_total", {"x": "\ud83d\ude80 \ud83d"}, "\udc00"]`)
	if err != nil {
		t.Fatal(err)
	}
	if k.Labels[0].Value != "🚀 \uFFFD" || k.Help != "\uFFFD" {
		t.Fatalf("got %q %q", k.Labels[0].Value, k.Help)
	}
}

func TestParseShardName(t *testing.T) {
	tests := []struct {
		in   string
		want ShardID
		err  string // what the error says; "" for none
	}{
		{"counter_4100", ShardID{Kind: KindCounter, PID: "4100"}, ""},
		{"histogram_abc", ShardID{Kind: KindHistogram, PID: "abc"}, ""},
		{"summary_1", ShardID{Kind: KindSummary, PID: "1"}, ""},
		{"gauge_livemostrecent_7", ShardID{Kind: KindGauge, Mode: "livemostrecent", PID: "7"}, ""},
		{"gauge_all_", ShardID{}, "want gauge_<mode>_<pid>"},
		{"gauge_all_1_2", ShardID{Kind: KindGauge, Mode: "all", PID: "1_2"}, ""},
		{"gauge_bogus_1", ShardID{}, `unknown gauge mode "bogus"`},
		{"gauge_1", ShardID{}, "not <kind>_<pid> or gauge_<mode>_<pid>"},
		{"gauge", ShardID{}, "not <kind>_<pid> or gauge_<mode>_<pid>"},
		{"counter", ShardID{}, "not <kind>_<pid> or gauge_<mode>_<pid>"},
		{"counter_", ShardID{}, "want <kind>_<pid>"},
		{"counter_1_2", ShardID{Kind: KindCounter, PID: "1_2"}, ""},
		{"histogram_web_1_a", ShardID{Kind: KindHistogram, PID: "web_1_a"}, ""},
		{"info_1", ShardID{}, "not <kind>_<pid> or gauge_<mode>_<pid>"},
	}
	for _, tt := range tests {
		got, err := ParseShardName(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseShardName(%q) = %+v, %v; want %+v, error %q", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

// TestKeyArena: a key parsed into an arena equals ParseKey's, error for
// error, whatever the number of labels (none, a few, more than a block
// holds), and its labels end where its own do (an append cannot reach the
// next key's).
func TestKeyArena(t *testing.T) {
	var texts []string
	for n := range 80 {
		var ls []Label
		for i := range n {
			ls = append(ls, Label{Name: "l" + strconv.Itoa(1000+i), Value: strings.Repeat("v", i%7)})
		}
		texts = append(texts, EncodeKey("fam", "fam_total", ls, "Help."))
	}
	texts = append(texts,
		`["legacy", "legacy_total", {"a": "1"}]`,
		`["dup", "dup_total", {"a": "1", "a": "2"}, "Duplicate label."]`,
		`["esc", "esc_total", {"a": "\u00e9\n"}, "Escaped."]`,
		`not a key`,
		`["x", "x_total", {"a": 1}, "h"]`,
		`["", "x", {}, "h"]`,
	)
	var a KeyArena
	for round := range 3 { // the blocks fill and are replaced
		for _, text := range texts {
			want, wantErr := ParseKey(text)
			got, err := a.Parse(text)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || (err == nil && !reflect.DeepEqual(got, want)) {
				t.Fatalf("round %d, %.60q: arena %+v, %v; ParseKey %+v, %v", round, text, got, err, want, wantErr)
			}
			if err == nil && cap(got.Labels) != len(got.Labels) {
				t.Fatalf("%.60q: labels of cap %d for %d", text, cap(got.Labels), len(got.Labels))
			}
		}
	}
}

// BenchmarkParseKey parses a histogram bucket key of a typical size.
func BenchmarkParseKey(b *testing.B) {
	text := EncodeKey("http_request_duration_seconds", "http_request_duration_seconds_bucket", []Label{
		{Name: "le", Value: "0.25"}, {Name: "method", Value: "GET"},
		{Name: "route", Value: "/api/v2/organisations/<org_id>/projects/<project_id>/environments/1003"}, {Name: "status", Value: "200"},
	}, "Request latency of a typical Django or Flask application, labelled by route template and method.")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKey(text); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHasControl(t *testing.T) {
	for c := 0; c < 256; c++ {
		for n := 1; n <= 17; n++ {
			for pos := 0; pos < n; pos++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				if got, want := hasControl(string(b)), c < 0x20; got != want {
					t.Fatalf("hasControl(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	if hasControl("") || hasControl(strings.Repeat("\x7f\x80\xff ~", 9)) {
		t.Error("hasControl reports a string without control bytes")
	}
}
