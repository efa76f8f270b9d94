package migrate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// An archive shard (pid "archive" or "archive-<n>", written by promstore
// cleanup) holds the merged samples of the dead processes' shards it
// absorbed, and records nothing about which shards those were: not their
// pids, nor when. A migration that writes a per-pid shard beside an archive
// that absorbed it, or an archive beside the per-pid shards it absorbed,
// makes every reader count those processes twice. Since the archive
// cannot say what it holds, the plan treats as possibly absorbed every
// shard of the archive's kind and mode whose sample keys the archive all
// holds (a shard with a series the archive lacks cannot have been merged
// into it: archives keep every key they absorb), and refuses the
// migration when such a shard would stand beside the archive.

// archivedCheck collects, while the target is read, what the check needs.
type archivedCheck struct {
	prefix string
	// srcArchives are the source's archive shards by kind name.
	srcArchives map[string][]*ShardPlan
	// dstArchives holds the key texts of the target's archives that the
	// plan does not write, by kind name, and their ids.
	dstArchives   map[string]map[string]struct{}
	dstArchiveIDs map[string][]store.ShardID
	// dstOthers holds the key texts of the target's shards in the
	// migration's pid namespace that the source lacks, of the kinds and
	// modes the source has archives of.
	dstOthers map[store.ShardID]map[string]struct{}
	// srcKeys holds each source archive's key texts, built once when the
	// check first needs them.
	srcKeys map[*ShardPlan]map[string]struct{}
}

// isArchive reports whether a target pid names an archive: one a cleanup
// of the target wrote, or one a migration wrote under the pid prefix.
func (c *archivedCheck) isArchive(pid string) bool {
	if store.IsArchivePID(pid) {
		return true
	}
	rest, ok := strings.CutPrefix(pid, c.prefix)
	return ok && c.prefix != "" && store.IsArchivePID(rest)
}

func newArchivedCheck(prefix string, shards []*ShardPlan) *archivedCheck {
	c := &archivedCheck{
		prefix:        prefix,
		srcArchives:   map[string][]*ShardPlan{},
		dstArchives:   map[string]map[string]struct{}{},
		dstArchiveIDs: map[string][]store.ShardID{},
		dstOthers:     map[store.ShardID]map[string]struct{}{},
	}
	for _, sp := range shards {
		if store.IsArchivePID(sp.Source.PID) {
			k := sp.Source.KindName()
			c.srcArchives[k] = append(c.srcArchives[k], sp)
		}
	}
	return c
}

// wants reports whether the check needs the key texts of a target shard
// the plan does not write: the shard is a target archive, or the source
// has archives of its kind and mode and the shard is in the run's pid
// namespace. Others need no key text computed.
func (c *archivedCheck) wants(id store.ShardID) bool {
	if c.isArchive(id.PID) {
		return true
	}
	return len(c.srcArchives[id.KindName()]) > 0 && strings.HasPrefix(id.PID, c.prefix)
}

// target notes a target sample of a shard the plan does not write.
func (c *archivedCheck) target(s store.Sample, text string) {
	k := s.Shard.KindName()
	if c.isArchive(s.Shard.PID) {
		keys := c.dstArchives[k]
		if keys == nil {
			keys = map[string]struct{}{}
			c.dstArchives[k] = keys
			c.dstArchiveIDs[k] = append(c.dstArchiveIDs[k], s.Shard)
		} else if ids := c.dstArchiveIDs[k]; ids[len(ids)-1] != s.Shard && !slices.Contains(ids, s.Shard) {
			c.dstArchiveIDs[k] = append(ids, s.Shard)
		}
		keys[text] = struct{}{}
	}
	if len(c.srcArchives[k]) == 0 || !strings.HasPrefix(s.Shard.PID, c.prefix) {
		return
	}
	keys := c.dstOthers[s.Shard]
	if keys == nil {
		keys = map[string]struct{}{}
		c.dstOthers[s.Shard] = keys
	}
	keys[text] = struct{}{}
}

// maxArchivedLines is how many shards an ArchivedError names.
const maxArchivedLines = 20

// ArchivedError is returned when a migration would write a shard beside
// an archive that may already hold its samples (or an archive beside
// shards it may hold): nothing is written.
type ArchivedError struct {
	// Lines name each such shard and the archive.
	Lines []string
}

func (e *ArchivedError) Error() string {
	lines := e.Lines
	if len(lines) > maxArchivedLines {
		lines = append(lines[:maxArchivedLines:maxArchivedLines], fmt.Sprintf("... and %d more", len(e.Lines)-maxArchivedLines))
	}
	return fmt.Sprintf("nothing written: %d shard(s) may be counted twice, because an archive written by promstore cleanup may already hold their samples (an archive does not record which shards it absorbed, so promstore cannot tell and refuses):\n  %s\n"+
		"what to do: a source shard whose samples the target's archive holds was most likely migrated before and compacted in the target since: it is in the target already; move it out of the source and run again (but a shard that was never migrated, of a worker started since the earlier run, is not in the archive: moved out of the source, its data would be lost; if every such shard is new, run with --first-migration). "+
		"A target shard the source lacks while the source's archive holds its samples was most likely migrated before and compacted in the source since: the source's archive holds it; delete it from the target (or leave the source's archive out) and run again. "+
		"If this source was never migrated into this target before (history moved into a Redis whose own archive holds the same series, say), run again with --first-migration",
		len(e.Lines), strings.Join(lines, "\n  "))
}

// check returns an *ArchivedError when the plan would write beside an
// archive that may hold what it writes; nil otherwise.
func (c *archivedCheck) check(p *Plan) error {
	var lines []string
	planned := map[store.ShardID]bool{}
	for _, sp := range p.Shards {
		planned[sp.Target] = true
	}
	// A source shard the target lacks, whose samples a target archive
	// holds (a cleanup of the target after an earlier migration).
	for _, sp := range p.Shards {
		k := sp.Target.KindName()
		keys := c.dstArchives[k]
		if store.IsArchivePID(sp.Source.PID) || keys == nil || len(sp.Items) == 0 || sp.held() {
			continue
		}
		if allIn(sp.Items, keys) {
			lines = append(lines, fmt.Sprintf("source shard %s: the target has no shard %s, and its archive %s holds every one of its %d series: if it was migrated before, move it out of the source; if it was never migrated (a worker started since the earlier run), run with --first-migration instead: moved out of the source, its data would be lost",
				sp.Source, sp.Target, joinIDs(c.dstArchiveIDs[k]), len(sp.Items)))
		}
	}
	// A target shard the source lacks, whose samples a source archive
	// holds (a cleanup of the source after an earlier migration).
	var others []store.ShardID
	for id := range c.dstOthers {
		if !planned[id] {
			others = append(others, id)
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].String() < others[j].String() })
	for _, id := range others {
		keys := c.dstOthers[id]
		for _, sp := range c.srcArchives[id.KindName()] {
			if !unchanged(sp) && subset(keys, c.archiveKeys(sp)) {
				srcID := id
				srcID.PID = strings.TrimPrefix(id.PID, c.prefix)
				lines = append(lines, fmt.Sprintf("target shard %s: the source has no shard %s, and its archive %s, migrated as %s, holds every one of its %d series",
					id, srcID, sp.Source, sp.Target, len(keys)))
				break
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return &ArchivedError{Lines: lines}
}

// unchanged reports whether the target already holds every sample of the
// shard as the source does: the run writes none of it, so it cannot add
// a second copy of anything (an archive migrated before, unchanged since).
func unchanged(sp *ShardPlan) bool {
	for i := range sp.Items {
		if sp.Items[i].Action != Same {
			return false
		}
	}
	return true
}

// held reports whether the target holds any sample of the shard.
func (sp *ShardPlan) held() bool {
	if len(sp.others) > 0 {
		return true
	}
	for i := range sp.Items {
		if sp.Items[i].Action != Create {
			return true
		}
	}
	return false
}

func allIn(items []Item, keys map[string]struct{}) bool {
	for i := range items {
		if _, ok := keys[items[i].Text]; !ok {
			return false
		}
	}
	return true
}

// archiveKeys returns the key texts of a source archive, built once per
// archive however many target shards are compared with it.
func (c *archivedCheck) archiveKeys(sp *ShardPlan) map[string]struct{} {
	if have, ok := c.srcKeys[sp]; ok {
		return have
	}
	have := make(map[string]struct{}, len(sp.Items))
	for i := range sp.Items {
		have[sp.Items[i].Text] = struct{}{}
	}
	if c.srcKeys == nil {
		c.srcKeys = map[*ShardPlan]map[string]struct{}{}
	}
	c.srcKeys[sp] = have
	return have
}

// subset reports whether every key of keys is in have.
func subset(keys, have map[string]struct{}) bool {
	if len(keys) > len(have) {
		return false
	}
	for k := range keys {
		if _, ok := have[k]; !ok {
			return false
		}
	}
	return true
}

func joinIDs(ids []store.ShardID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}
