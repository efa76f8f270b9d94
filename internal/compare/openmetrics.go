package compare

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// omSuffixes lists, per OpenMetrics type, the sample name suffixes of a
// family's series; "" is the family's own name.
var omSuffixes = map[string][]string{
	"counter":        {"_total"},
	"gauge":          {""},
	"histogram":      {"_bucket", "_count", "_sum"},
	"gaugehistogram": {"_bucket"},
	"summary":        {"", "_count", "_sum"},
	"info":           {"_info"},
	"stateset":       {""},
	"unknown":        {""},
}

// omMoved lists, per OpenMetrics type, the sample name suffixes that
// Python's text exposition writes as gauge families of their own
// ("# TYPE requests_created gauge"): a comparison with the text of the
// same samples finds them there.
var omMoved = map[string][]string{
	"counter":        {"_created"},
	"histogram":      {"_created"},
	"gaugehistogram": {"_gcount", "_gsum", "_created"},
	"summary":        {"_created"},
}

// omTextType is the type the text exposition gives a family of an
// OpenMetrics type (what Python's generate_latest writes for it).
var omTextType = map[string]string{
	"counter": "counter", "gauge": "gauge", "histogram": "histogram", "gaugehistogram": "histogram",
	"summary": "summary", "info": "gauge", "stateset": "gauge", "unknown": "untyped",
}

type omFamily struct {
	name, typ, help string
	series          []Series
}

// parseOpenMetrics reads an OpenMetrics exposition line by line. It is
// promstore's own reader, not expfmt's: that one rejects what
// prometheus_client writes for a histogram or summary that observed a
// negative value or NaN (a negative or NaN _sum), and a counter
// incremented by NaN, and it takes milliseconds a line. This one checks
// the line syntax and that each sample belongs to a family, and keeps
// label values (le and quantile included) exactly as written. Families
// come out as Python's text exposition of the same samples has them: a
// counter's, histogram's or summary's _created samples (a gauge
// histogram's _gcount and _gsum too) as a gauge family of that name, an
// info family under its sample name, a stateset as a gauge, unknown as
// untyped. Timestamps and exemplars are read past.
func parseOpenMetrics(source string, data []byte) (*Exposition, error) {
	var fams []*omFamily
	byName := map[string]*omFamily{}
	family := func(name string) *omFamily {
		f := byName[name]
		if f == nil {
			f = &omFamily{name: name, typ: "unknown"}
			byName[name] = f
			fams = append(fams, f)
		}
		return f
	}
	var cur *omFamily
	eof := false
	for n, line := range bytes.Split(data, []byte("\n")) {
		n++
		s := strings.TrimSuffix(string(line), "\r")
		if eof {
			if strings.TrimSpace(s) != "" {
				return nil, fmt.Errorf("%s: parse openmetrics exposition: line %d: text after # EOF", source, n)
			}
			continue
		}
		fail := func(format string, a ...any) error {
			return fmt.Errorf("%s: parse openmetrics exposition: line %d: %s", source, n, fmt.Sprintf(format, a...))
		}
		switch {
		case s == "":
			continue
		case s == "# EOF":
			eof = true
			continue
		case strings.HasPrefix(s, "#"):
			rest, ok := strings.CutPrefix(s, "# ")
			if !ok {
				return nil, fail("%q is no descriptor (# HELP, # TYPE, # UNIT) or # EOF", store.Clip(s))
			}
			kw, rest, _ := strings.Cut(rest, " ")
			name, rest, err := omName(rest)
			if err != nil {
				return nil, fail("%s %v", kw, err)
			}
			rest, hasArg := strings.CutPrefix(rest, " ")
			switch kw {
			case "HELP":
				cur = family(name)
				cur.help = omUnescape(rest)
			case "TYPE":
				if _, ok := omSuffixes[rest]; !hasArg || !ok {
					return nil, fail("unknown type %q for %s", store.Clip(rest), store.Clip(name))
				}
				cur = family(name)
				cur.typ = rest
			case "UNIT":
				cur = family(name)
			default:
				return nil, fail("%q is no descriptor (# HELP, # TYPE, # UNIT) or # EOF", store.Clip(s))
			}
		default:
			name, labels, rest, err := omSample(s)
			if err != nil {
				return nil, fail("%v", err)
			}
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				return nil, fail("sample %s has no value", store.Clip(name))
			}
			v, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return nil, fail("sample %s: value %q is not a number", store.Clip(name), store.Clip(fields[0]))
			}
			f, moved := omFamilyOf(cur, byName, name)
			if moved != "" {
				g := family(f.name + moved)
				g.typ, g.help = "gauge", f.help
				g.series = append(g.series, Series{Name: name, Labels: labels, Value: v})
				continue
			}
			if f == nil {
				// A sample without a descriptor: a family of type
				// unknown of its own name.
				f = family(name)
			}
			cur = f
			f.series = append(f.series, Series{Name: name, Labels: labels, Value: v})
		}
	}
	if !eof {
		return nil, fmt.Errorf("%s: parse openmetrics exposition: no # EOF line at the end", source)
	}
	e := &Exposition{Source: source, ExactBounds: true, Families: make([]Family, 0, len(fams))}
	for _, f := range fams {
		out := Family{Name: f.name, Type: omTextType[f.typ], Help: f.help, Series: f.series}
		if f.typ == "info" {
			out.Name += "_info" // as the text exposition names it
		}
		e.Families = append(e.Families, out)
	}
	return e, nil
}

// omFamilyOf finds the family a sample name belongs to: the current one
// (the last descriptor or sample's) if the name fits it, else any
// family it fits. moved is the suffix of a sample that the text
// exposition moves to a gauge family of its own (omMoved), else "".
func omFamilyOf(cur *omFamily, byName map[string]*omFamily, name string) (f *omFamily, moved string) {
	fits := func(f *omFamily) (bool, string) {
		if f == nil {
			return false, ""
		}
		rest, ok := strings.CutPrefix(name, f.name)
		if !ok {
			return false, ""
		}
		for _, suf := range omSuffixes[f.typ] {
			if rest == suf {
				return true, ""
			}
		}
		for _, suf := range omMoved[f.typ] {
			if rest == suf {
				return true, suf
			}
		}
		return false, ""
	}
	if ok, m := fits(cur); ok {
		return cur, m
	}
	for i := len(name); i > 0; i-- {
		if ok, m := fits(byName[name[:i]]); ok {
			return byName[name[:i]], m
		}
	}
	return nil, ""
}

// omName reads a metric name at the start of s, bare or quoted (UTF-8
// names), and returns it and what follows it.
func omName(s string) (name, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		if name, rest, err = omQuoted(s); err != nil {
			return "", "", err
		}
		switch {
		case name == "":
			return "", "", fmt.Errorf("empty metric name in %q", store.Clip(s))
		case rest != "" && rest[0] != ' ' && rest[0] != '{':
			return "", "", fmt.Errorf("metric name %q runs into %q", store.Clip(name), store.Clip(rest))
		}
		return name, rest, nil
	}
	i := strings.IndexAny(s, " {")
	if i < 0 {
		i = len(s)
	}
	if i == 0 {
		return "", "", fmt.Errorf("no metric name in %q", store.Clip(s))
	}
	return s[:i], s[i:], nil
}

// omQuoted reads a quoted string at the start of s (escapes \\, \" and
// \n), and returns it unescaped and what follows it.
func omQuoted(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return omUnescape(s[1:i]), s[i+1:], nil
		case '\\':
			i++ // the escaped byte ends nothing
		}
	}
	return "", "", fmt.Errorf("unterminated quoted string %q", store.Clip(s))
}

// omUnescape unescapes a help text or a quoted string's inside: \\, \"
// and \n (another escape is kept as written).
func omUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case '\\', '"':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// omSample reads a sample's name and labels: name, name{labels} or
// {"name",labels}; rest is what follows the name or the closing brace.
func omSample(line string) (name string, labels []store.Label, rest string, err error) {
	body := line // from the opening brace on
	if !strings.HasPrefix(line, "{") {
		name, body, err = omName(line)
		if err != nil || !strings.HasPrefix(body, "{") {
			return name, nil, body, err
		}
	}
	body = body[1:]
	if name == "" && strings.HasPrefix(body, `"`) {
		// {"name",...}: a quoted name first, not followed by "=".
		n, after, qerr := omQuoted(body)
		if qerr == nil && !strings.HasPrefix(after, "=") {
			name, body = n, strings.TrimPrefix(after, ",")
		}
	}
	if name == "" {
		return "", nil, "", fmt.Errorf("no metric name in %q", store.Clip(line))
	}
	for {
		if after, ok := strings.CutPrefix(body, "}"); ok {
			return name, labels, after, nil
		}
		var ln string
		if strings.HasPrefix(body, `"`) {
			if ln, body, err = omQuoted(body); err != nil {
				return "", nil, "", err
			}
		} else {
			i := strings.IndexAny(body, `=,}" `)
			if i <= 0 {
				return "", nil, "", fmt.Errorf("bad label set in %q", store.Clip(line))
			}
			ln, body = body[:i], body[i:]
		}
		var ok bool
		if body, ok = strings.CutPrefix(body, "="); !ok || !strings.HasPrefix(body, `"`) {
			return "", nil, "", fmt.Errorf("label %s has no quoted value in %q", store.Clip(ln), store.Clip(line))
		}
		var lv string
		if lv, body, err = omQuoted(body); err != nil {
			return "", nil, "", err
		}
		labels = append(labels, store.Label{Name: ln, Value: lv})
		if after, ok := strings.CutPrefix(body, ","); ok {
			body = after
		} else if !strings.HasPrefix(body, "}") {
			return "", nil, "", fmt.Errorf("bad label set in %q", store.Clip(line))
		}
	}
}
