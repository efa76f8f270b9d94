package migrate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"

	"github.com/promstore/promstore/internal/store"
)

// journalEntry records one summed sample: where its source value came
// from and what it was, the target value it was added to and the value
// it wrote. Entries are written before the sums are, and appended run
// after run. A rerun follows the sample's entries back from the value the
// target holds now (each sum's written value leading to the value it was
// added to) and so knows which sums are in it: a source whose value is
// among them is not added again. Without the journal it could not tell a
// summed target from a conflicting one and would add the source twice.
type journalEntry struct {
	Shard  string `json:"shard"`
	Key    string `json:"key"`
	Src    string `json:"src"`
	SrcTS  string `json:"src_ts"`
	Post   string `json:"post"`
	PostTS string `json:"post_ts"`
	// Pre is the target's value the sum was made of, Source the source
	// store and shard the summed value came from; both empty in
	// journals of earlier promstore versions.
	Pre    string `json:"pre,omitempty"`
	Source string `json:"source,omitempty"`
}

func journalKey(id store.ShardID, text string) string { return id.String() + "\x00" + text }

// bits spells a float exactly.
func bits(f float64) string { return strconv.FormatUint(math.Float64bits(f), 16) }

func unbits(s string) (float64, error) {
	u, err := strconv.ParseUint(s, 16, 64)
	return math.Float64frombits(u), err
}

// journalVerdict is what a sample's journal entries say of a conflict.
type journalVerdict int

const (
	journalOther   journalVerdict = iota // no sum of this source: a new sum
	journalDone                          // the source's value is in the target
	journalNotDone                       // its sum was journaled, never written
	journalUnsure                        // whether it is in the target cannot be told
)

// floats of an entry, decoded; ok false if any does not decode.
type entryFloats struct {
	src, srcTS, post, postTS, pre float64
	hasPre, ok                    bool
}

func (e journalEntry) floats() entryFloats {
	var f entryFloats
	var errs [5]error
	f.src, errs[0] = unbits(e.Src)
	f.srcTS, errs[1] = unbits(e.SrcTS)
	f.post, errs[2] = unbits(e.Post)
	f.postTS, errs[3] = unbits(e.PostTS)
	if e.Pre != "" {
		f.pre, errs[4] = unbits(e.Pre)
		f.hasPre = errs[4] == nil
	}
	f.ok = errs[0] == nil && errs[1] == nil && errs[2] == nil && errs[3] == nil && errs[4] == nil
	return f
}

// verdict says what the journal entries of it's sample (oldest first)
// tell of it, a conflict whose source is source (store and shard), and
// why when unsure.
func verdict(entries []journalEntry, it *Item, source string, ignoreTS bool) (journalVerdict, string) {
	S, T := it.Sample, it.Target
	ours := func(e journalEntry, f entryFloats) bool {
		return e.Source == source || (e.Source == "" && sameFloat(f.src, S.Value))
	}
	same := func(f entryFloats) bool {
		return sameFloat(f.src, S.Value) && (ignoreTS || sameFloat(f.srcTS, S.Timestamp))
	}
	anyOurs := false
	for _, e := range entries {
		if f := e.floats(); f.ok && ours(e, f) {
			anyOurs = true
		}
	}
	if !anyOurs {
		return journalOther, ""
	}
	// The sums in the target's value: from the newest entry back, each
	// whose written value is the value at that point; the newest may
	// have been journaled and not written (the run stopped first).
	cur, curTS := T.Value, T.Timestamp
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		f := e.floats()
		if !f.ok {
			break
		}
		if sameFloat(f.post, cur) && (ignoreTS || sameFloat(f.postTS, curTS)) {
			if ours(e, f) {
				if same(f) {
					return journalDone, ""
				}
				return journalUnsure, fmt.Sprintf("its source was summed with the value %s before and holds %s now: the difference cannot be added exactly", store.PyRepr(f.src), store.PyRepr(S.Value))
			}
			if !f.hasPre {
				break // an entry of an earlier version: the chain ends here
			}
			cur = f.pre // earlier sums led to this sum's starting value
			continue
		}
		notWritten := (f.hasPre && sameFloat(f.pre, cur)) || (!f.hasPre && sameFloat(cur+f.src, f.post))
		if i == len(entries)-1 && notWritten && ours(e, f) && same(f) {
			return journalNotDone, ""
		}
		break
	}
	return journalUnsure, "a process wrote it since an earlier run summed this source into it"
}

// readJournal loads a journal, each sample's entries oldest first; a
// missing file is an empty journal.
func readJournal(path string) (map[string][]journalEntry, error) {
	out := map[string][]journalEntry{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("journal %s: line %d: %w", path, line, err)
		}
		k := e.Shard + "\x00" + e.Key
		out[k] = append(out[k], e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return out, nil
}

// appendJournal records every summed sample of the plan, durably, before
// any of them is written.
func appendJournal(path string, p *Plan) error {
	var entries []journalEntry
	for _, sp := range p.Shards {
		for i := range sp.Items {
			it := &sp.Items[i]
			if !it.summed {
				continue
			}
			entries = append(entries, journalEntry{
				Shard: sp.Target.String(), Key: it.Text,
				Src: bits(it.Sample.Value), SrcTS: bits(it.Sample.Timestamp),
				Post: bits(it.WriteValue), PostTS: bits(it.WriteTS),
				Pre: bits(it.Target.Value), Source: p.sourceOf(sp),
			})
		}
	}
	if len(entries) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return fmt.Errorf("write journal %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write journal %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write journal %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write journal %s: %w", path, err)
	}
	return nil
}
