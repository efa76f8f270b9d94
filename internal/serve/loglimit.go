package serve

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logEvery is how often a kind of scrape failure is logged at most.
const logEvery = time.Minute

// logLimiter logs each kind of scrape failure once, then at most once per
// logEvery with the number of times it was left out meanwhile, so that a
// store that fails every scrape does not flood the log.
type logLimiter struct {
	mu    sync.Mutex
	kinds map[string]*limited
	now   func() time.Time
}

type limited struct {
	last       time.Time
	suppressed int
}

// log logs msg with args at lvl unless kind was logged less than
// logEvery ago.
func (l *logLimiter) log(ctx context.Context, log *slog.Logger, lvl slog.Level, kind, msg string, args ...any) {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	l.mu.Lock()
	if l.kinds == nil {
		l.kinds = map[string]*limited{}
	}
	k := l.kinds[kind]
	if k != nil && t.Sub(k.last) < logEvery {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	if k == nil {
		k = &limited{}
		l.kinds[kind] = k
	}
	suppressed := k.suppressed
	k.last, k.suppressed = t, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "not_logged_since_last", suppressed)
	}
	log.Log(ctx, lvl, msg, args...)
}
