package store

import (
	"errors"
	"fmt"
	"strings"
)

// ShardError says why one shard (or one key of it) could not be read.
type ShardError struct {
	// Shard names the shard: a file name or a Redis key.
	Shard string
	// Offset is the byte offset of the problem in a file, or -1.
	Offset int64
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
	// ID is the shard the problem belongs to, when the store could tell
	// (a Redis key of a shard whose key name it parsed); zero otherwise.
	ID ShardID
	// Kind classifies the problem for code that must tell problems apart
	// (Reason is for people).
	Kind ProblemKind
	// Path is the shard's file, for a file store's problems with a file
	// that was there (so that it can be looked at again); empty
	// otherwise.
	Path string
}

// ProblemKind classifies a shard problem.
type ProblemKind int

const (
	// ProblemOther is any problem not named below.
	ProblemOther ProblemKind = iota
	// ProblemOrphan is a sample's key whose shard record is missing (a
	// Redis metric hash without its meta hash): what a write stopped
	// part-way leaves; a rerun of it, or cleanup --orphans, deals with it.
	ProblemOrphan
	// ProblemEmptyFile is a shard file of 0 bytes: what a writer that
	// has just created its file and not yet sized it leaves for an
	// instant (or a writer killed then). It holds no sample.
	ProblemEmptyFile
)

// Error words the problem in one line; the shard's name, the reason and
// the underlying error are each clipped (see Clip), since they may echo
// what the store holds.
func (e *ShardError) Error() string {
	var b strings.Builder
	b.WriteString("shard ")
	b.WriteString(NameText(e.Shard))
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": entry at offset %d", e.Offset)
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(Clip(e.Reason))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(Clip(e.Err.Error()))
	}
	return b.String()
}

func (e *ShardError) Unwrap() error { return e.Err }

// PartialError is returned by a scan that read the store except the
// shards (or keys) listed in Problems.
type PartialError struct {
	Problems []*ShardError
}

func (e *PartialError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].Error()
	}
	return fmt.Sprintf("%d shards could not be read; first: %v", len(e.Problems), e.Problems[0])
}

// Partial reports whether err only says that some shards were skipped, and
// returns those problems. A nil err is not partial.
func Partial(err error) ([]*ShardError, bool) {
	var pe *PartialError
	if errors.As(err, &pe) {
		return pe.Problems, true
	}
	return nil, false
}

// ScanErrors collects shard problems during a scan.
type ScanErrors struct {
	problems []*ShardError
}

// Add records a problem.
func (s *ScanErrors) Add(e *ShardError) { s.problems = append(s.problems, e) }

// Err returns a *PartialError when problems were recorded, else nil.
func (s *ScanErrors) Err() error {
	if len(s.problems) == 0 {
		return nil
	}
	return &PartialError{Problems: s.problems}
}
