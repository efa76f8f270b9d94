package filestore

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/promstore/promstore/internal/store"
)

// Problem kinds Inspect names (fsck's vocabulary for one file's bytes).
const (
	ProblemEmpty     = "empty"      // 0 bytes: Python's collector fails on it
	ProblemHeader    = "header"     // shorter than the header, or a used size below it
	ProblemTruncated = "truncated"  // the used size is past the end of the file
	ProblemCorrupt   = "corrupt"    // an entry before the used size cannot be read
	ProblemPastUsed  = "past-used"  // whole entries after the used size, which no reader sees
	ProblemDuplicate = "duplicate"  // one key twice in the shard
	ProblemTooLarge  = "too-large"  // larger than a shard can be (2 GiB)
	ProblemIO        = "unreadable" // the file could not be read
)

// SalvagedEntry is one entry Inspect could read.
type SalvagedEntry struct {
	// Offset of the entry's key length in the file.
	Offset int
	Key    *store.Key
	Value  float64
	// Timestamp is 0 in the 8-byte layout.
	Timestamp float64
}

// Inspection is what Inspect found in one shard file's bytes.
type Inspection struct {
	Size int64
	// Used is the used size the header gives (-1 when there is no header).
	Used int64
	// Layout is 8 or 16; 0 when no entry tells.
	Layout int
	// Entries are the readable entries, in file order, up to the first one
	// that is not (or up to the used size).
	Entries []SalvagedEntry
	// End is the offset after the last readable entry.
	End int
	// Problem is the kind of what stops the file from being read as a
	// whole (ProblemEmpty ... ProblemCorrupt), "" when it reads; Detail
	// says it in words.
	Problem, Detail string
	// PastUsed counts whole entries found after the used size.
	PastUsed int
	// Duplicates lists key texts that occur more than once.
	Duplicates []string
}

// Sound reports whether Python's collector reads the file completely.
func (in *Inspection) Sound() bool { return in.Problem == "" }

// InspectFile reads the regular file path whole and inspects it; hint is
// the layout to prefer when the entries do not tell (see Inspect).
func InspectFile(path string, hint int) (*Inspection, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > math.MaxInt32 {
		return &Inspection{Size: fi.Size(), Used: -1, Problem: ProblemTooLarge,
			Detail: fmt.Sprintf("file of %d bytes is larger than the 2 GiB a shard can address", fi.Size())}, nil
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Inspect(data, hint), nil
}

// openRegular opens path for reading when it is a regular file (never a
// FIFO or device, which could block or never end).
func openRegular(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	return os.Open(path)
}

// Inspect reads a shard file's bytes entry by entry as far as they can be
// read, unlike the readers, which give up on a file at its first bad
// entry: this is what a repair can keep. The layout is the stride whose
// walk reaches the used size exactly; when neither does, the one that
// reads more entries, and hint (else 16) on a tie.
func Inspect(data []byte, hint int) *Inspection {
	size := int64(len(data))
	in := &Inspection{Size: size, Used: -1, End: headerSize}
	limit := len(data)
	switch {
	case size == 0:
		in.Problem, in.Detail, in.End = ProblemEmpty, "empty file (0 bytes), not even a header", 0
		return in
	case size < headerSize:
		in.Problem, in.Detail, in.End = ProblemHeader, fmt.Sprintf("file of %d bytes is shorter than the 8-byte header", size), 0
		return in
	}
	in.Used = int64(int32(binary.LittleEndian.Uint32(data)))
	switch {
	case in.Used == 0:
		// Python reads a used size of 0 as an empty shard.
		return in
	case in.Used < headerSize:
		in.Problem, in.Detail = ProblemHeader, fmt.Sprintf("used size %d is less than the 8-byte header", in.Used)
	case in.Used > size:
		in.Problem, in.Detail = ProblemTruncated, fmt.Sprintf("used size %d exceeds file size %d (truncated file)", in.Used, size)
	default:
		limit = int(in.Used)
	}
	ents16, end16, why16 := salvageWalk(data, limit, LayoutTimestamp)
	ents8, end8, why8 := salvageWalk(data, limit, LayoutLegacy)
	pick16 := hint != LayoutLegacy
	switch {
	case in.Problem == "" && why16 == "" && why8 == "":
		pick16 = !(spacePadded(data, limit, LayoutLegacy) && !spacePadded(data, limit, LayoutTimestamp))
	case in.Problem == "" && why16 == "":
		pick16 = true
	case in.Problem == "" && why8 == "":
		pick16 = false
	case len(ents16) != len(ents8):
		pick16 = len(ents16) > len(ents8)
	}
	in.Layout, in.Entries, in.End = LayoutTimestamp, ents16, end16
	why := why16
	if !pick16 {
		in.Layout, in.Entries, in.End, why = LayoutLegacy, ents8, end8, why8
	}
	if len(in.Entries) == 0 && limit == headerSize {
		in.Layout = 0
	}
	if in.Problem == "" && why != "" {
		in.Problem, in.Detail = ProblemCorrupt, why
	}
	if in.Problem == "" {
		layout := in.Layout
		if layout == 0 {
			layout = LayoutTimestamp
		}
		past, _, _ := salvageFrom(data, in.End, len(data), layout)
		in.PastUsed = len(past)
	}
	seen := make(map[string]bool, len(in.Entries))
	for _, e := range in.Entries {
		if seen[e.Key.Text] {
			in.Duplicates = append(in.Duplicates, e.Key.Text)
		}
		seen[e.Key.Text] = true
	}
	return in
}

// salvageWalk reads the entries of data[8:limit] with values of stride
// bytes until one cannot be read, and says why it stopped ("" when it
// reached limit exactly).
func salvageWalk(data []byte, limit, stride int) ([]SalvagedEntry, int, string) {
	return salvageFrom(data, headerSize, limit, stride)
}

func salvageFrom(data []byte, pos, limit, stride int) ([]SalvagedEntry, int, string) {
	var out []SalvagedEntry
	for pos < limit {
		if limit-pos < 4 {
			return out, pos, fmt.Sprintf("entry at offset %d: %d stray bytes before offset %d, too few for a key length", pos, limit-pos, limit)
		}
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		switch {
		case n < 0:
			return out, pos, fmt.Sprintf("entry at offset %d: negative key length %d", pos, n)
		case n == 0:
			return out, pos, fmt.Sprintf("entry at offset %d: key length 0 (zero bytes where an entry should be, %d bytes before offset %d)", pos, limit-pos, limit)
		case n > limit-pos-4:
			return out, pos, fmt.Sprintf("entry at offset %d: key length %d exceeds offset %d", pos, n, limit)
		}
		k, err := store.ParseKey(string(data[pos+4 : pos+4+n]))
		if err != nil {
			return out, pos, fmt.Sprintf("entry at offset %d: %v", pos, err)
		}
		vp := pos + 4 + n + padding(n)
		if vp+stride > limit {
			return out, pos, fmt.Sprintf("entry at offset %d: %d-byte value at offset %d ends past offset %d", pos, stride, vp, limit)
		}
		e := SalvagedEntry{Offset: pos, Key: k, Value: math.Float64frombits(binary.LittleEndian.Uint64(data[vp:]))}
		if stride == LayoutTimestamp {
			e.Timestamp = math.Float64frombits(binary.LittleEndian.Uint64(data[vp+8:]))
		}
		out = append(out, e)
		pos = vp + stride
	}
	return out, pos, ""
}

// RewriteSalvaged atomically replaces the shard file path with one
// holding the entries of in, in its layout (16 when it has none), key
// texts byte for byte and in their order: a temporary file beside it,
// fsync, rename, fsync of the directory.
func RewriteSalvaged(path string, in *Inspection) error {
	layout := in.Layout
	if layout == 0 {
		layout = LayoutTimestamp
	}
	recs := make([]record, len(in.Entries))
	for i, e := range in.Entries {
		recs[i] = record{text: e.Key.Text, value: e.Value, ts: e.Timestamp}
	}
	buf, capacity, err := encodeShard(recs, layout)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	return replaceFile(path, buf, capacity, perm)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error { return syncDir(dir) }
