package serve

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxRejectedLogged is how many of the problems a rejected-output log
// line names.
const maxRejectedLogged = 5

// rejectChecks remembers when warnRejected last checked the output of
// each exposition (content type).
type rejectChecks struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether the output of contentType is to be checked now:
// the first time, then at most once per logEvery (what the check finds
// is logged at most that often anyway, and a check costs about a tenth
// of encoding the output).
func (c *rejectChecks) due(contentType string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.last[contentType]; ok && now.Sub(last) < logEvery {
		return false
	}
	if c.last == nil {
		c.last = map[string]time.Time{}
	}
	c.last[contentType] = now
	return true
}

// warnRejected logs, once and then at most once a minute like the other
// scrape failures, that the output has names a Prometheus server would
// reject the scrape for (names written alike once escaped: two # HELP
// blocks of one name, a label twice, duplicate series; see
// render.Exposition.Rejected). The output is served as Python writes it
// all the same.
func (s *Server) warnRejected(ctx context.Context, snap *snapshot, resp answer) {
	now := time.Now
	if s.scraper.failures.now != nil {
		now = s.scraper.failures.now
	}
	if !s.scraper.rejected.due(resp.contentType, now()) {
		return
	}
	p := resp.expo.Rejected(snap.fams)
	if len(p) == 0 {
		return
	}
	named := p
	if len(named) > maxRejectedLogged {
		named = named[:maxRejectedLogged]
	}
	s.scraper.failures.log(ctx, s.log, slog.LevelWarn, "rejected names",
		"Prometheus would reject this output whole (served as Python writes it)",
		"format", resp.contentType, "problems", len(p), "first", strings.Join(named, "; "))
}
