// Package render writes aggregated metric families (and raw per-shard
// samples) in the output formats promstore offers: the Prometheus text
// format 0.0.4 exactly as Python's prometheus_client writes it, OpenMetrics
// and protobuf through the prometheus/common expfmt encoders, and JSON.
package render

import (
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// Text writes fams in the Prometheus text format 0.0.4 byte for byte as
// the newest prometheus_client's generate_latest (default escaping) does
// for the same families in the same order: "# HELP" and "# TYPE" lines (a
// counter family "requests" is exposed as "requests_total"), then one line
// per sample with labels in the order given and values formatted by
// store.FloatToGoString. Help escapes backslash and newline; label values
// escape backslash, double quote and newline and keep every other byte
// (tab, CR, U+2028) raw. Metric and label names outside the legacy
// character set have each offending character replaced by "_", as Python's
// "underscores" escaping does. Samples named <family>_created, _gsum or
// _gcount move to trailing gauge families, as in Python. Exposition.Write
// writes other formats, escapings and releases' spellings.
func Text(w io.Writer, fams []aggregate.Family) error {
	return Exposition{Escaping: model.UnderscoreEscaping, Client: pyclient.Latest}.Write(w, fams)
}

// Exposition is one way Python's make_wsgi_app writes the families: the
// format, the name escaping and the prometheus_client release whose
// spelling of floats (values and le labels) it follows.
type Exposition struct {
	// OpenMetrics selects openmetrics.generate_latest: the family name in
	// "# HELP"/"# TYPE" (types counter, gauge, histogram, summary,
	// unknown), help escaping double quotes too, no families moved, and
	// "# EOF" last. Otherwise the Prometheus text format (0.0.4 and 1.0.0
	// write the same bytes).
	OpenMetrics bool
	// Escaping is the name escaping: model.NoEscaping quotes non-legacy
	// names as Python's "allow-utf-8" does; the underscores, dots and
	// values schemes follow Python's _escape.
	Escaping model.EscapingScheme
	// Client is the release whose floatToGoString writes the values.
	// (Bucket bounds are spelled by the aggregator: aggregate.NewFor.)
	Client pyclient.Version
	// NoEOF leaves out OpenMetrics' "# EOF", for a caller that appends
	// families of its own before it.
	NoEOF bool
}

// Write writes fams as e says.
func (e Exposition) Write(w io.Writer, fams []aggregate.Family) error {
	units := textUnits(fams, e.OpenMetrics)
	var err error
	if len(units) <= 1 || runtime.GOMAXPROCS(0) == 1 {
		tw := textWriter{Exposition: e}
		for _, u := range units {
			tw.unit(u)
			if len(tw.b) >= flushAt {
				if _, err := w.Write(tw.b); err != nil {
					return err
				}
				tw.b = tw.b[:0]
			}
		}
		_, err = w.Write(tw.b)
	} else {
		err = writeUnits(w, units, e)
	}
	if err == nil && e.OpenMetrics && !e.NoEOF {
		_, err = io.WriteString(w, "# EOF\n")
	}
	return err
}

// flushAt is how many bytes the serial writer gathers before writing.
const flushAt = 64 << 10

// textUnit is a run of output lines: a family's header (when header is
// set) and the samples idx of fam.
type textUnit struct {
	fam    *aggregate.Family
	header *textHeader
	idx    []int32
}

type textHeader struct{ name, typ, help string }

// unitSamples is how many samples a unit holds at most, and unitBytes
// the room a new unit buffer starts with (about as much, at the length of
// a typical line); the few buffers in flight are reused.
const (
	unitSamples = 2048
	unitBytes   = 256 << 10
)

// textUnits cuts the output into units, in output order: each family's
// header and samples, then (in the Prometheus text format) the samples
// named <family>_created, _gcount and _gsum under headers of their own,
// as Python moves them.
func textUnits(fams []aggregate.Family, om bool) []textUnit {
	var units []textUnit
	emit := func(f *aggregate.Family, h *textHeader, idx []int32) {
		for first := true; first || len(idx) > 0; first = false {
			n := min(len(idx), unitSamples)
			u := textUnit{fam: f, idx: idx[:n:n]}
			if first {
				u.header = h
			}
			units = append(units, u)
			idx = idx[n:]
		}
	}
	for i := range fams {
		f := &fams[i]
		mname, mtype := headerNames(f, om)
		main := make([]int32, 0, len(f.Samples))
		var moved [len(omSuffixes)][]int32
		for j := range f.Samples {
			if k := omSuffix(f.Name, f.Samples[j].Name); k >= 0 && !om {
				moved[k] = append(moved[k], int32(j))
				continue
			}
			main = append(main, int32(j))
		}
		emit(f, &textHeader{mname, mtype, f.Help}, main)
		for k, idx := range moved {
			if len(idx) > 0 {
				emit(f, &textHeader{f.Name + omSuffixes[k], "gauge", f.Help}, idx)
			}
		}
	}
	return units
}

// headerNames are the name and type a family's "# HELP" and "# TYPE"
// lines give.
func headerNames(f *aggregate.Family, om bool) (mname, mtype string) {
	mname, mtype = f.Name, string(f.Type)
	switch {
	case f.Type == "" && om:
		mtype = "unknown"
	case f.Type == "":
		mtype = "untyped"
	case f.Type == store.KindCounter && !om:
		mname += "_total"
	}
	return mname, mtype
}

// unit appends one unit.
func (tw *textWriter) unit(u textUnit) {
	if u.header != nil {
		tw.header(u.header.name, u.header.typ, u.header.help)
	}
	for _, i := range u.idx {
		tw.sample(&u.fam.Samples[i])
	}
}

// writeUnits renders units on every core, a few ahead, and writes them
// to w in order; each worker renders into the buffers written before.
func writeUnits(w io.Writer, units []textUnit, e Exposition) error {
	workers := runtime.GOMAXPROCS(0)
	free := newBufPool(2*workers, unitBytes)
	return store.OrderedStream(len(units), workers, 2*workers, 1, func(_, i int, send func([]byte)) {
		tw := textWriter{Exposition: e, b: free.get()}
		tw.unit(units[i])
		send(tw.b)
	}, func(b []byte) error {
		_, err := w.Write(b)
		free.put(b)
		return err
	})
}

// textWriter appends text exposition to b.
type textWriter struct {
	Exposition
	b []byte
	// The last metric name written and whether it is written as is, and
	// of each label position the last value written without escaping:
	// consecutive samples mostly repeat them.
	lastName   string
	nameLegacy bool
	plain      [8]string
	plainNames [8]string // and of label names written as they are
}

var omSuffixes = [...]string{"_created", "_gcount", "_gsum"} // sorted, as Python emits them

func omSuffix(family, name string) int {
	if len(name) <= len(family) || name[:len(family)] != family {
		return -1
	}
	for k, suf := range omSuffixes {
		if name[len(family):] == suf {
			return k
		}
	}
	return -1
}

func (tw *textWriter) header(mname, mtype, help string) {
	tw.b = append(tw.b, "# HELP "...)
	tw.metricName(mname)
	tw.b = append(tw.b, ' ')
	for i := 0; i < len(help); i++ {
		switch c := help[i]; c {
		case '\\':
			tw.b = append(tw.b, `\\`...)
		case '\n':
			tw.b = append(tw.b, `\n`...)
		case '"':
			if tw.OpenMetrics {
				tw.b = append(tw.b, `\"`...)
			} else {
				tw.b = append(tw.b, c)
			}
		default:
			tw.b = append(tw.b, c)
		}
	}
	tw.b = append(tw.b, "\n# TYPE "...)
	tw.metricName(mname)
	tw.b = append(tw.b, ' ')
	tw.b = append(tw.b, mtype...)
	tw.b = append(tw.b, '\n')
}

func (tw *textWriter) sample(s *aggregate.Sample) {
	if s.Name != tw.lastName {
		tw.lastName = s.Name
		tw.nameLegacy = legacyMetricName(s.Name)
	}
	quoted := tw.Escaping == model.NoEscaping && !tw.nameLegacy
	switch {
	case quoted:
		tw.b = append(tw.b, '{')
		tw.escapeName(s.Name, true)
		if len(s.Labels) > 0 {
			tw.b = append(tw.b, ',')
		}
	case tw.nameLegacy && (tw.Escaping == model.NoEscaping || tw.Escaping == model.UnderscoreEscaping ||
		tw.Escaping == model.ValueEncodingEscaping && !tw.OpenMetrics):
		// OpenMetrics runs every sample name through _escape: with the
		// dots and values schemes even legacy names change ("U__a__b").
		tw.b = append(tw.b, s.Name...)
		if len(s.Labels) > 0 {
			tw.b = append(tw.b, '{')
		}
	default:
		tw.escapeName(s.Name, true)
		if len(s.Labels) > 0 {
			tw.b = append(tw.b, '{')
		}
	}
	for i, l := range s.Labels {
		if i > 0 {
			tw.b = append(tw.b, ',')
		}
		if i < len(tw.plainNames) && l.Name == tw.plainNames[i] {
			// The name at this place of the sample before, written
			// as it is (the same memory, or the same bytes from
			// another key's text: a short comparison, not a check).
			tw.b = append(tw.b, l.Name...)
		} else if tw.labelName(l.Name) && i < len(tw.plainNames) {
			tw.plainNames[i] = l.Name
		}
		tw.b = append(tw.b, '=', '"')
		if i < len(tw.plain) && sameString(l.Value, tw.plain[i]) {
			tw.b = append(tw.b, l.Value...)
		} else {
			var escaped bool
			tw.b, escaped = appendLabelValue(tw.b, l.Value)
			if !escaped && i < len(tw.plain) {
				tw.plain[i] = l.Value
			}
		}
		tw.b = append(tw.b, '"')
	}
	if quoted || len(s.Labels) > 0 {
		tw.b = append(tw.b, '}')
	}
	tw.b = append(tw.b, ' ')
	tw.b = appendValue(tw.b, s.Value, tw.Client)
	tw.b = append(tw.b, '\n')
}

// sameString reports whether a and b are the same bytes in memory, which
// the samples of one series share.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// appendValue appends client.FloatToGoString(v), avoiding the general
// formatter for the integral values most samples hold.
func appendValue(b []byte, v float64, client pyclient.Version) []byte {
	if v > -1e15 && v < 1e6 && v == float64(int64(v)) && !signbit(v) {
		b = strconv.AppendInt(b, int64(v), 10)
		return append(b, '.', '0')
	}
	if a := math.Abs(v); a >= 1e-4 && a < 1e6 {
		// Python's repr writes these in positional notation with the
		// shortest digits that round-trip, as 'f' with precision -1 does,
		// and floatToGoString keeps them (an integral part of at most
		// six digits).
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return append(b, client.FloatToGoString(v)...)
}

func signbit(v float64) bool { return v == 0 && 1/v < 0 }

// appendLabelValue appends v with backslash, double quote and newline
// escaped, and tells whether any was.
func appendLabelValue(b []byte, v string) ([]byte, bool) {
	if len(v) < 16 {
		// Too short for the SIMD searches to pay.
		i := 0
		for i < len(v) && v[i] != '\\' && v[i] != '"' && v[i] != '\n' {
			i++
		}
		if i == len(v) {
			return append(b, v...), false
		}
	} else if strings.IndexByte(v, '\\') < 0 && strings.IndexByte(v, '"') < 0 && strings.IndexByte(v, '\n') < 0 {
		return append(b, v...), false // nothing to escape, found at SIMD speed
	}
	start := 0
	for i := 0; i < len(v); i++ {
		var esc string
		switch v[i] {
		case '\\':
			esc = `\\`
		case '"':
			esc = `\"`
		case '\n':
			esc = `\n`
		default:
			continue
		}
		b = append(b, v[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, v[start:]...), true
}

func (tw *textWriter) metricName(n string) {
	if legacyMetricName(n) && tw.Escaping != model.DotsEscaping {
		tw.b = append(tw.b, n...)
		return
	}
	tw.escapeName(n, true)
}

// labelName appends label name n, escaped as the scheme wants, and tells
// whether it was written as it is.
func (tw *textWriter) labelName(n string) (plain bool) {
	if legacyLabelName(n) && tw.Escaping != model.DotsEscaping {
		tw.b = append(tw.b, n...)
		return true
	}
	tw.escapeName(n, false)
	return false
}

// escapeName ports prometheus_client's escape_metric_name /
// escape_label_name for a name that needs it (Python 0.25).
func (tw *textWriter) escapeName(n string, metric bool) {
	if n == "" {
		return
	}
	switch tw.Escaping {
	case model.NoEscaping:
		if metric && legacyMetricName(n) || !metric && legacyLabelName(n) {
			tw.b = append(tw.b, n...)
			return
		}
		tw.b = append(tw.b, '"')
		tw.b, _ = appendLabelValue(tw.b, n)
		tw.b = append(tw.b, '"')
	case model.DotsEscaping:
		for i, r := range []rune(n) {
			switch {
			case r == '_':
				tw.b = append(tw.b, "__"...)
			case r == '.':
				tw.b = append(tw.b, "_dot_"...)
			case legacyRune(r, i, metric):
				tw.b = utf8.AppendRune(tw.b, r)
			default:
				tw.b = append(tw.b, "__"...)
			}
		}
	case model.ValueEncodingEscaping:
		tw.b = append(tw.b, "U__"...)
		for i := 0; i < len(n); {
			r, size := utf8.DecodeRuneInString(n[i:])
			pos := utf8.RuneCountInString(n[:i])
			switch {
			case r == '_':
				tw.b = append(tw.b, "__"...)
			case legacyRune(r, pos, metric):
				tw.b = utf8.AppendRune(tw.b, r)
			case r == utf8.RuneError && size == 1:
				tw.b = append(tw.b, "_FFFD_"...)
			default:
				tw.b = append(tw.b, '_')
				tw.b = append(tw.b, strconv.FormatInt(int64(r), 16)...)
				tw.b = append(tw.b, '_')
			}
			i += size
		}
	default: // underscores
		i := 0
		for _, r := range n {
			if legacyRune(r, i, metric) {
				tw.b = utf8.AppendRune(tw.b, r)
			} else {
				tw.b = append(tw.b, '_')
			}
			i++
		}
	}
}

// legacyRune is Python's _is_legacy_metric_rune / _is_legacy_labelname_rune.
func legacyRune(r rune, i int, metric bool) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' ||
		r >= '0' && r <= '9' && i > 0 || metric && r == ':'
}

// legacyMetricName matches ^[a-zA-Z_:][a-zA-Z0-9_:]*$.
func legacyMetricName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

// legacyLabelName matches ^[a-zA-Z_][a-zA-Z0-9_]*$.
func legacyLabelName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
