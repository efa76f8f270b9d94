package render

import (
	"bufio"
	"io"
	"unicode/utf8"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// JSON writes fams as one JSON document:
//
//	{"families":[
//	{"name":"requests","type":"counter","help":"Requests.","samples":[{"name":"requests_total","labels":{"route":"/"},"value":"5.0"}]},
//	{"name":"temperature","type":"gauge","help":"Temp.","mode":"max","samples":[{"name":"temperature","labels":{},"value":"NaN"}]}
//	]}
//
// Each family is an object on its own line, in the order given (promstore
// sorts them by name), with its fields in this order:
//   - "name": the family name as stored (a counter "requests" has samples
//     "requests_total");
//   - "type": "counter", "gauge", "histogram" or "summary";
//   - "help": the help text, unescaped;
//   - "mode": the gauge multiprocess mode ("all", "max", "livesum", ...),
//     present for gauges only;
//   - "samples": the samples in order, each {"name", "labels", "value"}.
//
// "labels" is an object whose keys keep the samples' label order (sorted by
// name); "value" is a string formatted as the text exposition formats it
// ("1.5", "5.0", "1e+06", "NaN", "+Inf", "-Inf"), like the Prometheus HTTP
// API, so that every float fits. Strings are escaped as encoding/json does
// except that <, > and & are kept; invalid UTF-8 becomes U+FFFD. The
// document ends with a newline. An empty store gives {"families":[]}.
func JSON(w io.Writer, fams []aggregate.Family) error { return JSONFor(w, fams, pyclient.Latest) }

// JSONFor is JSON with the values spelled as prometheus_client release
// client spells them ("1e+10" or "1e+010").
func JSONFor(w io.Writer, fams []aggregate.Family, client pyclient.Version) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(jsonHead)
	var b []byte
	for i := range fams {
		f := &fams[i]
		b = appendFamilyJSON(b[:0], f, i)
		for j := range f.Samples {
			b = appendSampleJSON(b, &f.Samples[j], j, client)
		}
		b = append(b, jsonFamilyEnd...)
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	bw.WriteString(jsonTail(len(fams)))
	return bw.Flush()
}

// What JSON writes before the families, after family's samples, and after
// n families.
const (
	jsonHead      = `{"families":[`
	jsonFamilyEnd = "]}"
)

func jsonTail(n int) string {
	if n > 0 {
		return "\n]}\n"
	}
	return "]}\n"
}

// appendFamilyJSON appends what JSON writes of family f, the i-th (from
// 0), before its samples.
func appendFamilyJSON(b []byte, f *aggregate.Family, i int) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, "\n{\"name\":"...)
	b = appendJSONString(b, f.Name)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(f.Type))
	b = append(b, `,"help":`...)
	b = appendJSONString(b, f.Help)
	if f.Type == store.KindGauge && f.Mode != "" {
		b = append(b, `,"mode":`...)
		b = appendJSONString(b, f.Mode)
	}
	return append(b, `,"samples":[`...)
}

// appendSampleJSON appends sample s, the j-th (from 0) of its family.
func appendSampleJSON(b []byte, s *aggregate.Sample, j int, client pyclient.Version) []byte {
	if j > 0 {
		b = append(b, ',')
	}
	b = append(b, `{"name":`...)
	b = appendJSONString(b, s.Name)
	b = append(b, `,"labels":`...)
	b = appendLabelsJSON(b, s.Labels)
	b = append(b, `,"value":"`...)
	b = appendValue(b, s.Value, client)
	return append(b, `"}`...)
}

func appendLabelsJSON(b []byte, ls []store.Label) []byte {
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping off.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
