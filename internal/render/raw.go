package render

import (
	"bufio"
	"fmt"
	"io"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// RawFormats lists the formats NewRaw accepts.
var RawFormats = []string{"text", "json"}

// RawWriter writes per-shard samples before aggregation (dump --raw).
type RawWriter struct {
	w      *bufio.Writer
	json   bool
	buf    []byte
	client pyclient.Version
}

// NewRaw returns a RawWriter writing format to w:
//
// "text" is a tab-separated table with the header line
// "SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP": the shard name
// ("gauge_all_4100"), kind, gauge mode or "-", pid, the sample as
// name{label="value",...} in exposition syntax (non-legacy names quoted
// as in "allow-utf-8" exposition; label values escape \, " and newline as
// usual and, so that columns stay intact, tab as \t and CR as \r), the
// value as the exposition writes it ("5.0", "NaN", "+Inf"), and the
// timestamp as Python's repr(float), or "-" when it is 0 (never set).
//
// "json" is JSON lines, one object per sample, with the fields
// {"shard","kind","mode","pid","family","name","labels","help","value","timestamp"}:
// mode is "" for non-gauges, labels an object in the key's label order,
// value the exposition text of the value and timestamp Python's
// repr(float) of the timestamp ("0.0" when never set), both strings.
//
// Values are spelled as the newest prometheus_client spells them; NewRawFor
// picks a release. Labels (le included) are shown as the shard stores
// them, in the spelling of the client that wrote it.
func NewRaw(w io.Writer, format string) (*RawWriter, error) {
	return NewRawFor(w, format, pyclient.Latest)
}

// NewRawFor is NewRaw with values spelled as prometheus_client release
// client spells them ("1e+10" or "1e+010").
func NewRawFor(w io.Writer, format string, client pyclient.Version) (*RawWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	rw := &RawWriter{w: bw, client: client}
	switch format {
	case "text":
		bw.WriteString("SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP\n")
	case "json":
		rw.json = true
	default:
		return nil, fmt.Errorf("raw output format %q: want one of text, json", format)
	}
	return rw, nil
}

// Write writes one sample. Its signature lets it serve as a
// store.ScanFunc.
func (rw *RawWriter) Write(s store.Sample) error {
	if rw.json {
		return rw.writeJSON(s)
	}
	w := rw.w
	w.WriteString(s.Shard.String())
	w.WriteByte('\t')
	w.WriteString(string(s.Shard.Kind))
	w.WriteByte('\t')
	if s.Shard.Mode == "" {
		w.WriteByte('-')
	} else {
		w.WriteString(s.Shard.Mode)
	}
	w.WriteByte('\t')
	w.WriteString(s.Shard.PID)
	w.WriteByte('\t')
	rw.buf = AppendSampleText(rw.buf[:0], s.Key.Name, s.Key.Labels, EscapeColumns)
	rw.buf = append(rw.buf, '\t')
	rw.buf = appendValue(rw.buf, s.Value, rw.client)
	rw.buf = append(rw.buf, '\t')
	if s.Timestamp == 0 {
		rw.buf = append(rw.buf, '-')
	} else {
		rw.buf = append(rw.buf, store.PyRepr(s.Timestamp)...)
	}
	rw.buf = append(rw.buf, '\n')
	_, err := w.Write(rw.buf)
	return err
}

func (rw *RawWriter) writeJSON(s store.Sample) error {
	b := rw.buf[:0]
	b = append(b, `{"shard":`...)
	b = appendJSONString(b, s.Shard.String())
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(s.Shard.Kind))
	b = append(b, `,"mode":`...)
	b = appendJSONString(b, s.Shard.Mode)
	b = append(b, `,"pid":`...)
	b = appendJSONString(b, s.Shard.PID)
	b = append(b, `,"family":`...)
	b = appendJSONString(b, s.Key.Family)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, s.Key.Name)
	b = append(b, `,"labels":`...)
	b = appendLabelsJSON(b, s.Key.Labels)
	b = append(b, `,"help":`...)
	b = appendJSONString(b, s.Key.Help)
	b = append(b, `,"value":"`...)
	b = appendValue(b, s.Value, rw.client)
	b = append(b, `","timestamp":"`...)
	b = append(b, store.PyRepr(s.Timestamp)...)
	b = append(b, "\"}\n"...)
	rw.buf = b
	_, err := rw.w.Write(b)
	return err
}

// Close flushes what is buffered; it does not close the underlying writer.
func (rw *RawWriter) Close() error { return rw.w.Flush() }
