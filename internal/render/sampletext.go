package render

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/promstore/promstore/internal/store"
)

// Escape says which characters of a label value (and of a quoted name)
// the text form of a sample escapes. Every variant escapes \, " and
// newline as the exposition does.
type Escape int

// The escaping variants of the text form of a sample.
const (
	// EscapeExposition escapes what the text exposition does: \, " and
	// newline.
	EscapeExposition Escape = iota
	// EscapeColumns also escapes tab and CR, so that a sample stays one
	// field of a tab-separated line (dump --raw, migrate's listings).
	EscapeColumns
	// EscapeTerminal escapes every control character (C0, DEL, C1 and
	// U+FFFD, Go-style: \t, \x1b, \u0085), so that a sample cannot move a
	// terminal's cursor (top).
	EscapeTerminal
)

// SampleText is the text form of a sample: name{label="value",...} in
// exposition syntax, a name outside the legacy character set quoted
// inside the braces ({"my.name",label="v"}) as the allow-utf-8 exposition
// writes it, label values escaped as esc says.
func SampleText(name string, labels []store.Label, esc Escape) string {
	return string(AppendSampleText(nil, name, labels, esc))
}

// AppendSampleText appends SampleText(name, labels, esc) to b.
func AppendSampleText(b []byte, name string, labels []store.Label, esc Escape) []byte {
	quoted := !legacyMetricName(name)
	if quoted {
		b = append(b, '{')
		b = appendQuoted(b, name, esc)
		if len(labels) > 0 {
			b = append(b, ',')
		}
	} else {
		b = append(b, name...)
		if len(labels) > 0 {
			b = append(b, '{')
		}
	}
	b = appendLabelPairs(b, labels, esc)
	if quoted || len(labels) > 0 {
		b = append(b, '}')
	}
	return b
}

// LabelsText is the text form of a label set, {label="value",...}, or ""
// for none.
func LabelsText(labels []store.Label, esc Escape) string {
	if len(labels) == 0 {
		return ""
	}
	b := []byte{'{'}
	b = appendLabelPairs(b, labels, esc)
	return string(append(b, '}'))
}

func appendLabelPairs(b []byte, labels []store.Label, esc Escape) []byte {
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		if legacyLabelName(l.Name) {
			b = append(b, l.Name...)
		} else {
			b = appendQuoted(b, l.Name, esc)
		}
		b = append(b, '=')
		b = appendQuoted(b, l.Value, esc)
	}
	return b
}

// appendQuoted appends v in double quotes, escaped as esc says.
func appendQuoted(b []byte, v string, esc Escape) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		var e string
		n := 1
		switch {
		case c == '\\':
			e = `\\`
		case c == '"':
			e = `\"`
		case c == '\n':
			e = `\n`
		case esc == EscapeColumns && c == '\t':
			e = `\t`
		case esc == EscapeColumns && c == '\r':
			e = `\r`
		case esc == EscapeTerminal:
			r, size := utf8.DecodeRuneInString(v[i:])
			n = size
			if !terminalControl(r) {
				i += n
				continue
			}
			q := strconv.QuoteRuneToASCII(r)
			e = q[1 : len(q)-1]
		default:
			i++
			continue
		}
		b = append(b, v[start:i]...)
		b = append(b, e...)
		i += n
		start = i
	}
	b = append(b, v[start:]...)
	return append(b, '"')
}

// terminalControl reports whether r would act on a terminal rather than
// print (or is the replacement of an invalid byte).
func terminalControl(r rune) bool {
	return store.IsControl(r) || r == utf8.RuneError
}

// SpecialValue is the exposition's spelling of NaN and the infinities
// ("NaN", "+Inf", "-Inf"); false for every other value, which each form
// spells its own way.
func SpecialValue(v float64) (string, bool) {
	switch {
	case math.IsNaN(v):
		return "NaN", true
	case math.IsInf(v, 1):
		return "+Inf", true
	case math.IsInf(v, -1):
		return "-Inf", true
	}
	return "", false
}
