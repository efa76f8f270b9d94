package render

import (
	"bufio"
	"fmt"
	"io"
	"strings"

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
	// shard and cols are the last sample's shard and its columns (text)
	// or fields (JSON) up to the key's: a shard's samples come together.
	shard store.ShardID
	cols  []byte
	// keys holds each key's columns or fields, made once: a key is in
	// many shards.
	keys store.KeyTable[[]byte]
}

// keyText returns k's part of a line, made by mk the first time.
func (rw *RawWriter) keyText(k *store.Key, mk func([]byte) []byte) []byte {
	text, ok := rw.keys.Get(k.ID, k)
	if !ok {
		text = mk(nil)
		rw.keys.Put(k.ID, k, text)
	}
	return text
}

// shardCols returns the columns or fields of shard id, made by mk when
// the shard is not the last sample's.
func (rw *RawWriter) shardCols(id store.ShardID, mk func([]byte, store.ShardID) []byte) []byte {
	if rw.cols == nil || id != rw.shard {
		rw.shard, rw.cols = id, mk(rw.cols[:0], id)
	}
	return rw.cols
}

// NewRaw returns a RawWriter writing format to w:
//
// "text" is a tab-separated table with the header line
// "SHARD\tKIND\tMODE\tPID\tSAMPLE\tVALUE\tTIMESTAMP": the shard name
// ("gauge_all_4100"; it and the pid with backslash, tab, newline and CR
// escaped), kind, gauge mode or "-", pid, the sample as
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
	rw.buf = append(rw.buf[:0], rw.shardCols(s.Shard, appendShardColumns)...)
	rw.buf = append(rw.buf, rw.keyText(s.Key, func(b []byte) []byte {
		return AppendSampleText(b, s.Key.Name, s.Key.Labels, EscapeColumns)
	})...)
	rw.buf = append(rw.buf, '\t')
	rw.buf = appendValue(rw.buf, s.Value, rw.client)
	rw.buf = append(rw.buf, '\t')
	if s.Timestamp == 0 {
		rw.buf = append(rw.buf, '-')
	} else {
		rw.buf = append(rw.buf, store.PyRepr(s.Timestamp)...)
	}
	rw.buf = append(rw.buf, '\n')
	_, err := rw.w.Write(rw.buf)
	return err
}

// appendShardColumns appends the text format's columns of shard id, up
// to the sample's: shard name, kind, mode, pid, each followed by a tab.
func appendShardColumns(b []byte, id store.ShardID) []byte {
	b = AppendTSVField(b, id.String())
	b = append(b, '\t')
	b = append(b, id.Kind...)
	b = append(b, '\t')
	if id.Mode == "" {
		b = append(b, '-')
	} else {
		b = append(b, id.Mode...)
	}
	b = append(b, '\t')
	b = AppendTSVField(b, id.PID)
	return append(b, '\t')
}

// AppendTSVField appends a shard name or pid as one column (of raw
// dump, of ls's TSV): a file name
// may hold any byte but "/", and a tab or newline in it would break the
// table, so backslash, tab, newline and CR are written \\, \t, \n, \r
// (as ls's TSV writes them).
func AppendTSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\t\n\r\\") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendShardFields appends the JSON format's fields of shard id, from
// the line's opening brace to the pid.
func appendShardFields(b []byte, id store.ShardID) []byte {
	b = append(b, `{"shard":`...)
	b = appendJSONString(b, id.String())
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(id.Kind))
	b = append(b, `,"mode":`...)
	b = appendJSONString(b, id.Mode)
	b = append(b, `,"pid":`...)
	return appendJSONString(b, id.PID)
}

func (rw *RawWriter) writeJSON(s store.Sample) error {
	b := append(rw.buf[:0], rw.shardCols(s.Shard, appendShardFields)...)
	b = append(b, rw.keyText(s.Key, func(b []byte) []byte {
		b = append(b, `,"family":`...)
		b = appendJSONString(b, s.Key.Family)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, s.Key.Name)
		b = append(b, `,"labels":`...)
		b = appendLabelsJSON(b, s.Key.Labels)
		b = append(b, `,"help":`...)
		return appendJSONString(b, s.Key.Help)
	})...)
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
