package filestore

import (
	"encoding/binary"
	"errors"
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

// InspectFile inspects the regular file path as Inspect does its bytes;
// hint is the layout to prefer when the entries do not tell. A file whose
// header holds a used size within it is read up to inspectTail bytes past
// that size, where entries past the used size would lie (a store's shards
// are mostly room never written: 64 KiB files of a few KiB of entries);
// the whole file only when those entries run on past the bytes read. A
// symbolic link is not followed, and a FIFO or device is refused on its
// fstat, never read (it could block or never end): an error says what it
// is.
func InspectFile(path string, hint int) (*Inspection, error) {
	return (&Inspector{}).File(path, hint)
}

// Inspector inspects the files of one store (File), parsing each key
// text once however many shards hold it. The zero value is ready to use;
// it is not safe for concurrent use.
type Inspector struct {
	keys map[string]*store.Key
}

// maxInspectorKeys bounds the keys an Inspector keeps (about 700 bytes
// each with their texts): a pile of shards of the same few thousand
// series is parsed once, a store of more series keeps 23 MB of them.
const maxInspectorKeys = 1 << 15

// File is InspectFile.
func (ins *Inspector) File(path string, hint int) (*Inspection, error) {
	if ins.keys == nil {
		ins.keys = map[string]*store.Key{}
	}
	f, size, err := openRegularSize(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > math.MaxInt32 {
		return &Inspection{Size: size, Used: -1, Problem: ProblemTooLarge,
			Detail: fmt.Sprintf("file of %d bytes is larger than the 2 GiB a shard can address", size)}, nil
	}
	read := func(n int64) ([]byte, error) {
		data := make([]byte, n)
		if got, err := f.ReadAt(data, 0); int64(got) < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // shrank since its size was taken
			}
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return data, nil
	}
	// The bytes read must cover what their own header asks for: a
	// writer may raise the used size between two reads, and a used size
	// past the bytes read would read as a truncated file.
	want := min(size, inspectFirst)
	var data []byte
	for tries := 0; ; tries++ {
		if data, err = read(want); err != nil {
			return nil, err
		}
		need := readFor(data, size)
		if need <= want {
			break
		}
		want = need
		if tries == 2 {
			want = size // the used size keeps moving: all of it
		}
	}
	in, pastLimited := inspect(data, hint, ins.keys)
	if pastLimited && int64(len(data)) < size {
		// Entries past the used size run on past the bytes read.
		if data, err = read(size); err != nil {
			return nil, err
		}
		in, _ = inspect(data, hint, ins.keys)
	}
	in.Size = size
	return in, nil
}

// inspectTail is how many bytes past its used size InspectFile reads of a
// file, for entries past the used size: a writer killed between writing
// an entry and raising the used size leaves one. inspectFirst is how many
// it reads first (most shards' used bytes and tail).
const (
	inspectTail  = 4096
	inspectFirst = 8 << 10
)

// readFor returns how many bytes of a file of size bytes InspectFile reads
// for the header at the start of data: the used size and inspectTail past
// it when the used size lies within the file, the header alone for a used
// size of 0 (read as empty), else all of it.
func readFor(data []byte, size int64) int64 {
	switch {
	case len(data) < headerSize:
		return size
	case binary.LittleEndian.Uint32(data) == 0:
		return min(size, headerSize)
	}
	if used := usedWithin(data, size); used > 0 {
		return min(size, used+inspectTail)
	}
	return size
}

// Inspect reads a shard file's bytes entry by entry as far as they can be
// read, unlike the readers, which give up on a file at its first bad
// entry: this is what a repair can keep. The layout is the stride whose
// walk reaches the used size exactly; when neither does, the one that
// reads more entries, and hint (else 16) on a tie.
func Inspect(data []byte, hint int) *Inspection {
	in, _ := inspect(data, hint, nil)
	return in
}

// inspect is Inspect; pastLimited tells whether the entries past the used
// size ran up to the end of data (more bytes could hold more of them).
// keys, if not nil, holds the keys parsed before, by text, and gets the
// new ones.
func inspect(data []byte, hint int, keys map[string]*store.Key) (in *Inspection, pastLimited bool) {
	size := int64(len(data))
	in = &Inspection{Size: size, Used: -1, End: headerSize}
	limit := len(data)
	switch {
	case size == 0:
		in.Problem, in.Detail, in.End = ProblemEmpty, "empty file (0 bytes), not even a header", 0
		return in, false
	case size < headerSize:
		in.Problem, in.Detail, in.End = ProblemHeader, fmt.Sprintf("file of %d bytes is shorter than the 8-byte header", size), 0
		return in, false
	}
	in.Used = int64(int32(binary.LittleEndian.Uint32(data)))
	switch {
	case in.Used == 0:
		// Python reads a used size of 0 as an empty shard.
		return in, false
	case in.Used < headerSize:
		in.Problem, in.Detail = ProblemHeader, fmt.Sprintf("used size %d is less than the 8-byte header", in.Used)
	case in.Used > size:
		in.Problem, in.Detail = ProblemTruncated, fmt.Sprintf("used size %d exceeds file size %d (truncated file)", in.Used, size)
	default:
		limit = int(in.Used)
	}
	ents16, end16, why16 := salvageWalk(data, limit, LayoutTimestamp, keys)
	ents8, end8, why8 := salvageWalk(data, limit, LayoutLegacy, keys)
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
		var past []SalvagedEntry
		past, _, _, pastLimited = salvageFrom(data, in.End, len(data), layout, keys)
		in.PastUsed = len(past)
	}
	seen := make(map[string]bool, len(in.Entries))
	for _, e := range in.Entries {
		if seen[e.Key.Text] {
			in.Duplicates = append(in.Duplicates, e.Key.Text)
		}
		seen[e.Key.Text] = true
	}
	return in, pastLimited
}

// salvageWalk reads the entries of data[8:limit] with values of stride
// bytes until one cannot be read, and says why it stopped ("" when it
// reached limit exactly); keys as inspect's.
func salvageWalk(data []byte, limit, stride int, keys map[string]*store.Key) ([]SalvagedEntry, int, string) {
	out, pos, why, _ := salvageFrom(data, headerSize, limit, stride, keys)
	return out, pos, why
}

// salvageFrom is salvageWalk from offset pos; atLimit tells whether the
// walk stopped for want of bytes before limit (more could have been
// read past it), not at bytes that are no entry.
func salvageFrom(data []byte, pos, limit, stride int, keys map[string]*store.Key) (out []SalvagedEntry, end int, why string, atLimit bool) {
	for pos < limit {
		if limit-pos < 4 {
			return out, pos, fmt.Sprintf("entry at offset %d: %d stray bytes before offset %d, too few for a key length", pos, limit-pos, limit), true
		}
		n := int(int32(binary.LittleEndian.Uint32(data[pos:])))
		switch {
		case n < 0:
			return out, pos, fmt.Sprintf("entry at offset %d: negative key length %d", pos, n), false
		case n == 0:
			return out, pos, fmt.Sprintf("entry at offset %d: key length 0 (zero bytes where an entry should be, %d bytes before offset %d)", pos, limit-pos, limit), false
		case n > limit-pos-4:
			return out, pos, fmt.Sprintf("entry at offset %d: key length %d exceeds offset %d", pos, n, limit), true
		}
		k := keys[string(data[pos+4:pos+4+n])]
		if k == nil {
			var err error
			if k, err = store.ParseKey(string(data[pos+4 : pos+4+n])); err != nil {
				return out, pos, fmt.Sprintf("entry at offset %d: %v", pos, err), false
			}
			if keys != nil && len(keys) < maxInspectorKeys {
				keys[k.Text] = k
			}
		}
		vp := pos + 4 + n + padding(n)
		if vp+stride > limit {
			return out, pos, fmt.Sprintf("entry at offset %d: %d-byte value at offset %d ends past offset %d", pos, stride, vp, limit), true
		}
		e := SalvagedEntry{Offset: pos, Key: k, Value: math.Float64frombits(binary.LittleEndian.Uint64(data[vp:]))}
		if stride == LayoutTimestamp {
			e.Timestamp = math.Float64frombits(binary.LittleEndian.Uint64(data[vp+8:]))
		}
		out = append(out, e)
		pos = vp + stride
	}
	return out, pos, "", true
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
