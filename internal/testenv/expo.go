package testenv

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Exposition is a parsed Prometheus text exposition (format 0.0.4, as
// prometheus_client and promstore write it).
type Exposition struct {
	// Families in the order they appear.
	Families []ExpoFamily
}

// ExpoFamily is one family of an Exposition: its "# HELP" and "# TYPE"
// lines and the samples that follow them.
type ExpoFamily struct {
	// Name as the HELP/TYPE lines give it (a counter's "requests_total").
	Name string
	// Type from the TYPE line; empty when there is none.
	Type string
	// Help unescaped from the HELP line; HasHelp says whether there is one.
	Help    string
	HasHelp bool
	Samples []ExpoSample
}

// ExpoSample is one sample line.
type ExpoSample struct {
	Name string
	// Labels in the order written, values unescaped.
	Labels []ExpoLabel
	Value  float64
	// Timestamp is the optional timestamp text; empty when absent.
	Timestamp string
	// Line is the 1-based line number.
	Line int
}

// ExpoLabel is one label of a sample.
type ExpoLabel struct{ Name, Value string }

// Key identifies the sample by name and labels sorted by name, printed
// readably: name{a="x",b="y"} with values quoted as Go strings.
func (s ExpoSample) Key() string {
	ls := append([]ExpoLabel(nil), s.Labels...)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	var b strings.Builder
	b.WriteString(s.Name)
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// ParseExposition parses a Prometheus text exposition tolerantly enough
// for everything Python's generate_latest writes: label values may hold
// raw tabs, CRs and any UTF-8 (only \\, \" and \n are escapes), names may
// be quoted ({"my.name",l="v"} as in allow-utf-8 output), and an
// OpenMetrics "# EOF" ends the input. Samples belong to the family of the
// HELP/TYPE lines before them; samples before any such line get a family
// of their own name with no type. A family appearing twice, a malformed
// line or an unknown escape is an error naming the line.
func ParseExposition(data []byte) (*Exposition, error) {
	e := &Exposition{}
	seen := map[string]int{} // family name -> index
	cur := -1
	family := func(name string) int {
		if cur >= 0 && e.Families[cur].Name == name {
			return cur
		}
		if i, ok := seen[name]; ok {
			return -1 - i
		}
		e.Families = append(e.Families, ExpoFamily{Name: name})
		cur = len(e.Families) - 1
		seen[name] = cur
		return cur
	}
	lines := bytes.Split(data, []byte{'\n'})
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for n, raw := range lines {
		lineNo := n + 1
		line := string(raw)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			fields := strings.SplitN(line, " ", 3)
			if len(fields) < 2 {
				continue
			}
			kw := fields[1]
			if kw == "EOF" && len(fields) == 2 {
				break
			}
			if kw != "HELP" && kw != "TYPE" {
				continue // a plain comment
			}
			rest := strings.TrimPrefix(line, "# "+kw+" ")
			name, after, err := readName(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s name: %w", lineNo, kw, err)
			}
			text, hasText := strings.CutPrefix(after, " ")
			if !hasText && after != "" {
				return nil, fmt.Errorf("line %d: %s %s: want a space after the name", lineNo, kw, name)
			}
			i := family(name)
			if i < 0 {
				return nil, fmt.Errorf("line %d: family %s appears a second time", lineNo, name)
			}
			f := &e.Families[i]
			if kw == "HELP" {
				if f.HasHelp {
					return nil, fmt.Errorf("line %d: second HELP for %s", lineNo, name)
				}
				f.Help, f.HasHelp = unescapeHelp(text), true
			} else {
				if f.Type != "" {
					return nil, fmt.Errorf("line %d: second TYPE for %s", lineNo, name)
				}
				if text == "" {
					return nil, fmt.Errorf("line %d: TYPE %s without a type", lineNo, name)
				}
				f.Type = text
			}
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		s.Line = lineNo
		if cur < 0 {
			if i := family(s.Name); i < 0 {
				return nil, fmt.Errorf("line %d: family %s appears a second time", lineNo, s.Name)
			}
		}
		e.Families[cur].Samples = append(e.Families[cur].Samples, s)
	}
	return e, nil
}

func unescapeHelp(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readName reads a metric or label name: a quoted string or a token up to
// a space, '{', '=', ',' or '}'.
func readName(s string) (name, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		return readQuoted(s)
	}
	end := strings.IndexAny(s, " \t{=,}")
	if end < 0 {
		end = len(s)
	}
	if end == 0 {
		return "", s, fmt.Errorf("empty name at %q", clip(s))
	}
	return s[:end], s[end:], nil
}

// readQuoted reads a double-quoted string whose escapes are \\, \" and \n;
// every other byte is taken raw.
func readQuoted(s string) (string, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", "", fmt.Errorf("unterminated escape in %q", clip(s))
			}
			i++
			switch s[i] {
			case '\\':
				b.WriteByte('\\')
			case '"':
				b.WriteByte('"')
			case 'n':
				b.WriteByte('\n')
			default:
				return "", "", fmt.Errorf(`unknown escape \%c in %q`, s[i], clip(s))
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated quoted string %q", clip(s))
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func parseSampleLine(line string) (ExpoSample, error) {
	var s ExpoSample
	rest := line
	var err error
	inBraces := false
	if strings.HasPrefix(rest, "{") {
		// {"name",labels} form; the name must be quoted.
		if !strings.HasPrefix(rest[1:], `"`) {
			return s, fmt.Errorf("sample without a name: %q", clip(line))
		}
		s.Name, rest, err = readQuoted(rest[1:])
		if err != nil {
			return s, err
		}
		inBraces = true
		rest = strings.TrimPrefix(rest, ",")
	} else {
		s.Name, rest, err = readName(rest)
		if err != nil {
			return s, err
		}
		if strings.HasPrefix(rest, "{") {
			rest, inBraces = rest[1:], true
		}
	}
	if inBraces {
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			var l ExpoLabel
			l.Name, rest, err = readName(rest)
			if err != nil {
				return s, fmt.Errorf("sample %s: label name: %w", s.Name, err)
			}
			if !strings.HasPrefix(rest, `="`) {
				return s, fmt.Errorf("sample %s: label %s: want =\"value\" at %q", s.Name, l.Name, clip(rest))
			}
			l.Value, rest, err = readQuoted(rest[1:])
			if err != nil {
				return s, fmt.Errorf("sample %s: label %s: %w", s.Name, l.Name, err)
			}
			for _, o := range s.Labels {
				if o.Name == l.Name {
					return s, fmt.Errorf("sample %s: label %s twice", s.Name, l.Name)
				}
			}
			s.Labels = append(s.Labels, l)
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("sample %s: want , or } at %q", s.Name, clip(rest))
			}
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 || !(strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
		return s, fmt.Errorf("sample %s: want \" value [timestamp]\", got %q", s.Name, clip(rest))
	}
	s.Value, err = strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("sample %s: value %q: %w", s.Name, fields[0], err)
	}
	if len(fields) == 2 {
		s.Timestamp = fields[1]
	}
	return s, nil
}

// ValuesEqual reports whether two sample values are equal as numbers
// within a relative 1e-9 (summation order differs between writers): NaN
// equals NaN, an infinity only the same infinity, 5 equals 5.0.
func ValuesEqual(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case a == b:
		return true
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return false
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// ExpositionDiff lists how two expositions differ, each entry a readable
// line.
type ExpositionDiff struct {
	MissingFamilies, ExtraFamilies, ChangedFamilies []string
	MissingSamples, ExtraSamples, ChangedSamples    []string
	// Duplicates lists samples that appear twice in one exposition.
	Duplicates []string
}

// Empty reports whether the expositions are equal.
func (d *ExpositionDiff) Empty() bool {
	return len(d.MissingFamilies)+len(d.ExtraFamilies)+len(d.ChangedFamilies)+
		len(d.MissingSamples)+len(d.ExtraSamples)+len(d.ChangedSamples)+len(d.Duplicates) == 0
}

// String summarises the differences, at most 20 entries per kind.
func (d *ExpositionDiff) String() string {
	var b strings.Builder
	part := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s (%d):\n", title, len(items))
		for i, it := range items {
			if i == 20 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(items)-20)
				break
			}
			fmt.Fprintf(&b, "  %s\n", it)
		}
	}
	part("missing families", d.MissingFamilies)
	part("extra families", d.ExtraFamilies)
	part("changed families", d.ChangedFamilies)
	part("missing samples", d.MissingSamples)
	part("extra samples", d.ExtraSamples)
	part("changed samples (got, want)", d.ChangedSamples)
	part("duplicate samples", d.Duplicates)
	return b.String()
}

// DiffExpositions compares got with want semantically: the same families
// (name, type, help) and the same samples by name and exact label strings,
// with values equal per ValuesEqual. Order does not matter.
func DiffExpositions(got, want *Exposition) *ExpositionDiff {
	d := &ExpositionDiff{}
	gf, wf := familyMap(got), familyMap(want)
	for _, f := range want.Families {
		g, ok := gf[f.Name]
		if !ok {
			d.MissingFamilies = append(d.MissingFamilies, f.Name)
			continue
		}
		if g.Type != f.Type {
			d.ChangedFamilies = append(d.ChangedFamilies, fmt.Sprintf("%s: type %q, want %q", f.Name, g.Type, f.Type))
		}
		if g.HasHelp != f.HasHelp || g.Help != f.Help {
			d.ChangedFamilies = append(d.ChangedFamilies, fmt.Sprintf("%s: help %q, want %q", f.Name, g.Help, f.Help))
		}
	}
	for _, f := range got.Families {
		if _, ok := wf[f.Name]; !ok {
			d.ExtraFamilies = append(d.ExtraFamilies, f.Name)
		}
	}
	gs, gdup := sampleMap(got)
	ws, wdup := sampleMap(want)
	for _, k := range gdup {
		d.Duplicates = append(d.Duplicates, "got "+k)
	}
	for _, k := range wdup {
		d.Duplicates = append(d.Duplicates, "want "+k)
	}
	for _, f := range want.Families {
		for _, s := range f.Samples {
			k := s.Key()
			g, ok := gs[k]
			switch {
			case !ok:
				d.MissingSamples = append(d.MissingSamples, fmt.Sprintf("%s %s", k, fmtValue(s.Value)))
			case !ValuesEqual(g.Value, s.Value):
				d.ChangedSamples = append(d.ChangedSamples, fmt.Sprintf("%s %s, want %s", k, fmtValue(g.Value), fmtValue(s.Value)))
			}
		}
	}
	for _, f := range got.Families {
		for _, s := range f.Samples {
			if k := s.Key(); ws[k] == nil {
				d.ExtraSamples = append(d.ExtraSamples, fmt.Sprintf("%s %s", k, fmtValue(s.Value)))
			}
		}
	}
	return d
}

func fmtValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func familyMap(e *Exposition) map[string]*ExpoFamily {
	m := make(map[string]*ExpoFamily, len(e.Families))
	for i := range e.Families {
		m[e.Families[i].Name] = &e.Families[i]
	}
	return m
}

func sampleMap(e *Exposition) (map[string]*ExpoSample, []string) {
	m := map[string]*ExpoSample{}
	var dups []string
	for i := range e.Families {
		for j := range e.Families[i].Samples {
			s := &e.Families[i].Samples[j]
			k := s.Key()
			if _, ok := m[k]; ok {
				dups = append(dups, k)
				continue
			}
			m[k] = s
		}
	}
	return m, dups
}

// CompareExposition parses two Prometheus text expositions and reports
// with t.Errorf how got differs from want (see DiffExpositions): missing,
// extra and changed families and samples, the first 20 of each. A text
// that does not parse fails the test.
func CompareExposition(t testing.TB, got, want []byte) {
	t.Helper()
	g, err := ParseExposition(got)
	if err != nil {
		t.Fatalf("parse got exposition: %v", err)
	}
	w, err := ParseExposition(want)
	if err != nil {
		t.Fatalf("parse want exposition: %v", err)
	}
	if d := DiffExpositions(g, w); !d.Empty() {
		t.Errorf("expositions differ:\n%s", d)
	}
}
