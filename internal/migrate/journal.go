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

// journalEntry records one summed sample: the source value it added, the
// target value it added it to and the value it wrote. It is written
// before the sum is. A rerun that finds, for the same source value, the
// written value in the target knows the sum is done; the value before
// it, that the sum was not written (the run stopped first). Without the
// journal it could not tell a summed target from a conflicting one and
// would add the source twice.
type journalEntry struct {
	Shard  string `json:"shard"`
	Key    string `json:"key"`
	Src    string `json:"src"`
	SrcTS  string `json:"src_ts"`
	Post   string `json:"post"`
	PostTS string `json:"post_ts"`
	// Pre is the target's value the sum was made of; empty in journals
	// of earlier promstore versions.
	Pre string `json:"pre,omitempty"`
}

// journalVerdict is what a journal entry says of a conflicting sample.
type journalVerdict int

const (
	journalOther   journalVerdict = iota // another source value: a new sum
	journalDone                          // the sum is in the target
	journalNotDone                       // the target is as before the sum
	journalUnsure                        // the target changed since: unknown
)

func journalKey(id store.ShardID, text string) string { return id.String() + "\x00" + text }

// bits spells a float exactly.
func bits(f float64) string { return strconv.FormatUint(math.Float64bits(f), 16) }

func unbits(s string) (float64, error) {
	u, err := strconv.ParseUint(s, 16, 64)
	return math.Float64frombits(u), err
}

// verdict says what e, an entry of it's sample, tells of it: whether e
// records summing this very source value, and if so whether the target
// holds what the sum wrote, what it was before, or neither (a process
// wrote the sample since the sum, or before a sum that never got written:
// no rerun can tell which).
func (e journalEntry) verdict(it *Item, ignoreTS bool) journalVerdict {
	src, err1 := unbits(e.Src)
	srcTS, err2 := unbits(e.SrcTS)
	post, err3 := unbits(e.Post)
	postTS, err4 := unbits(e.PostTS)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil ||
		!sameFloat(src, it.Sample.Value) || (!ignoreTS && !sameFloat(srcTS, it.Sample.Timestamp)) {
		return journalOther
	}
	if sameFloat(post, it.Target.Value) && (ignoreTS || sameFloat(postTS, it.Target.Timestamp)) {
		return journalDone
	}
	if pre, err := unbits(e.Pre); e.Pre != "" && err == nil && sameFloat(pre, it.Target.Value) {
		return journalNotDone
	}
	return journalUnsure
}

// readJournal loads a journal; a missing file is an empty journal. Later
// entries replace earlier ones of the same sample.
func readJournal(path string) (map[string]journalEntry, error) {
	out := map[string]journalEntry{}
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
		out[e.Shard+"\x00"+e.Key] = e
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
				Pre: bits(it.Target.Value),
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

// journalPost is the value e's sum wrote, as Python spells it.
func journalPost(e journalEntry) string {
	v, err := unbits(e.Post)
	if err != nil {
		return e.Post
	}
	return store.PyRepr(v)
}
