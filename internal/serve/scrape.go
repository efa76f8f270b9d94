package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// scraper reads the store for scrapes. Scrapes that arrive while a read
// runs share it; the next scrape after it finishes starts a new one, so
// every scrape sees the store as it was at most one read ago. A read past
// its deadline takes no more scrapes: it could only fail them.
type scraper struct {
	st      store.Reader
	timeout time.Duration
	partial bool
	self    *selfMetrics
	log     *slog.Logger
	// failures limits the logs of failed reads and scrapes: each kind
	// once per logEvery (see logLimiter).
	failures logLimiter
	// rejected times the checks of warnRejected.
	rejected rejectChecks
	client   pyclient.Version // whose spelling of le the reads follow

	mu  sync.Mutex
	cur *flight // the read later scrapes join, nil if none
	// agg is the aggregator of the last read, Reset for the next one so
	// that it keeps what it learned about the store's keys; nil while a
	// read has it (a read running late while the next one starts makes
	// its own).
	agg *aggregate.Aggregator
	// last is what the last complete read handed over and made of it
	// (see unchangedReader); nil when there is none or it failed.
	last *lastRead
	// sameBodies lets an unchanged read serve the encodings of the read
	// before (off when they hold promstore's own metrics).
	sameBodies bool
	// sizes remembers the last unfiltered body size per Content-Type
	// (string to int), so that the next encoding allocates its buffer
	// once.
	sizes sync.Map
	// base is the parent of every read's context: it outlives the requests
	// (a read shared by several scrapes must not die with the first one)
	// and is cancelled only when the server stops for good.
	base   context.Context
	cancel context.CancelFunc
}

func newScraper(st store.Reader, timeout time.Duration, partial bool, self *selfMetrics, log *slog.Logger) *scraper {
	base, cancel := context.WithCancel(context.Background())
	return &scraper{st: st, timeout: timeout, partial: partial, self: self, log: log, base: base, cancel: cancel}
}

// stop aborts reads in progress and any later ones.
func (sc *scraper) stop() { sc.cancel() }

// unchangedReader is a store that tells whether its last complete read
// handed over exactly what the complete read before it did
// (filestore.Store with KeepReads: the same shards in the same order,
// each with the same entries, which it keeps between reads and never
// changes in place).
type unchangedReader interface {
	ReadUnchanged() bool
}

// lastRead is what a read handed over, shard by shard, and its snapshot.
// A read of a store that is an unchangedReader compares what it is
// handed with the last read's as it goes, and aggregates nothing while
// they are the same slices (the store's kept entries: a slice the last
// read was handed, held here, cannot be reused by the store for other
// entries, and kept entries never change): when the whole read was, and
// the store says so, the last snapshot is served again (it is what
// aggregating the same samples in the same order makes, to the bit);
// at the first shard that differs, the ones skipped are aggregated from
// the last read's slices (the same) and the read goes on as any other.
//
// When every shard of the last read and of this one was handed over from
// the store's kept entries (store.KeptShardScanner), and this read hands over the
// same shards with the same keys, some with other values (processes
// running and writing), the last read's aggregator, holding exactly its
// aggregation, is revalued (aggregate.Aggregator.Revalue): only the
// series whose samples changed are added again.
type lastRead struct {
	shards []aggregate.Shard
	snap   *snapshot
	// allKept is set when every shard came from the store's kept entries;
	// agg is the aggregator that made snap, while nothing else has
	// changed it (nil after an unchanged read, which leaves it as it was,
	// is taken over by the next read).
	allKept bool
	agg     *aggregate.Aggregator
}

// snapshot is the outcome of one read of the store, shared by the scrapes
// that waited for it.
type snapshot struct {
	fams []aggregate.Family
	// problems are the shards that could not be read (served anyway only
	// in partial mode).
	problems []*store.ShardError
	// err, when set, fails every scrape of this snapshot.
	err error

	mu     sync.Mutex
	bodies map[bodyKey]*body
}

type bodyKey struct {
	contentType string // names the exposition (negotiate's answers differ in it)
	names       string // the name[] filter, "\x00"-joined
	gzip        bool
}

// body is one encoding of a snapshot, made once however many scrapes of
// the same format share the snapshot.
type body struct {
	once sync.Once
	data []byte
	err  error
}

// errTimeout marks a read that took longer than the scrape timeout.
type errTimeout struct{ after time.Duration }

func (e errTimeout) Error() string {
	return fmt.Sprintf("reading the store took longer than the scrape timeout (%s)", e.after)
}

// errShutdown is the error of a read the server stopped (the shutdown
// grace ran out), not one of the store.
var errShutdown = errors.New("the server is shutting down")

// flight is one read of the store, shared by the scrapes that wait for
// it.
type flight struct {
	deadline time.Time
	done     chan struct{} // closed once snap is set
	snap     *snapshot
	scrapes  int // the scrapes that asked for it, guarded by scraper.mu
}

// get returns the snapshot of the read in progress, or of one it starts,
// and waits for it until ctx is done. start is when the scrape began: a
// read started for it ends at start plus the server's timeout, no later
// than the scrape (whose own deadline is at most that), so a scrape that
// comes after another timed out never joins the failed read.
func (sc *scraper) get(ctx context.Context, start time.Time) (*snapshot, error) {
	sc.mu.Lock()
	f := sc.cur
	if f == nil || !time.Now().Before(f.deadline) {
		f = &flight{deadline: start.Add(sc.timeout), done: make(chan struct{})}
		sc.cur = f
		go func() {
			f.snap = sc.read(f)
			close(f.done)
		}()
	}
	f.scrapes++
	sc.mu.Unlock()
	select {
	case <-f.done:
		return f.snap, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waiting returns how many scrapes asked for the read in progress (0 if
// none runs).
func (sc *scraper) waiting() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.cur == nil {
		return 0
	}
	return sc.cur.scrapes
}

// read scans the store once, until f's deadline, and aggregates it.
func (sc *scraper) read(f *flight) *snapshot {
	ctx, cancel := context.WithDeadline(sc.base, f.deadline)
	defer cancel()
	start := time.Now()
	// The aggregator is taken (and Reset) only when a shard is to be
	// aggregated: an unchanged read leaves it as the last read left it.
	var agg *aggregate.Aggregator
	defer func() {
		if agg != nil {
			sc.putAggregator(agg)
		}
	}()
	uc, tracked := store.As[unchangedReader](sc.st)
	sc.mu.Lock()
	prev := sc.last
	sc.mu.Unlock()
	var cur []aggregate.Shard
	if tracked {
		n := 1024
		if prev != nil {
			n = len(prev.shards)
		}
		cur = make([]aggregate.Shard, 0, n)
	}
	// m counts the shards handed over as the last read's (or with other
	// values), not aggregated (yet); replay aggregates them after all.
	// Only kept entries are taken for other values: they are still
	// there when replayed.
	var m aggregate.Matcher
	matching := tracked && prev != nil
	revaluable := matching && prev.allKept
	if matching {
		m.Last = prev.shards
	}
	allKept := true
	replay := func() error {
		agg = sc.takeAggregator()
		for _, h := range cur[:m.Skipped] {
			if err := agg.AddShard(h.ID, h.Entries); err != nil {
				return err
			}
		}
		return nil
	}
	var samples, shards int
	err := store.ScanKeptShards(ctx, sc.st, func(id store.ShardID, entries []store.Entry, kept bool) error {
		samples += len(entries)
		shards++
		allKept = allKept && kept
		if tracked {
			cur = append(cur, aggregate.Shard{ID: id, Entries: entries})
		}
		if matching {
			if m.Match(id, entries, kept, revaluable) {
				return nil
			}
			matching = false
			if err := replay(); err != nil {
				return err
			}
		}
		if agg == nil {
			agg = sc.takeAggregator()
		}
		return agg.AddShard(id, entries)
	})
	complete := err == nil && matching && m.Complete()
	unchanged := complete && len(m.Changed) == 0 && uc.ReadUnchanged()
	revalued := false
	if complete && len(m.Changed) > 0 && allKept {
		// The same shards and keys, other values: the last read's
		// aggregation revalued, when its aggregator is still as it left
		// it.
		if agg = sc.takeAggregatorOf(prev); agg != nil {
			revalued = agg.Revalue(prev.shards, cur, m.Changed)
			if !revalued {
				sc.putAggregator(agg)
				agg = nil
			}
		}
	}
	if _, partial := store.Partial(err); matching && !unchanged && !revalued && (err == nil || partial) {
		// The last read's shards so far (all of them, or all but those
		// the last read had after them), but not an unchanged read:
		// aggregated after all.
		if rerr := replay(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if agg == nil && !unchanged {
		agg = sc.takeAggregator() // nothing handed over
	}
	snap := &snapshot{bodies: map[bodyKey]*body{}}
	if unchanged {
		if sc.sameBodies {
			snap = prev.snap
		} else {
			snap.fams = prev.snap.fams
		}
	}
	problems, isPartial := store.Partial(err)
	// The problems that fail the scrape without --partial, each judged
	// once (a check of its process and its file).
	var failing []*store.ShardError
	if isPartial && !sc.partial {
		failing = slices.DeleteFunc(slices.Clone(problems), passing)
	}
	switch {
	case err == nil:
	case isPartial:
		snap.problems = problems
		sc.self.shardErrors.Add(float64(len(problems)))
		switch {
		case sc.partial:
			for _, p := range problems {
				sc.failures.log(ctx, sc.log, slog.LevelWarn, "skipped "+p.Shard, "skipping unreadable shard", "err", p)
			}
		case len(failing) == 0 && len(problems) > 0:
			// Redis keys expire one by one (the exporter's TTL): a
			// metric hash whose meta hash is gone is what a store under
			// TTLs holds now and then, and the exporter's collector skips
			// it too. A 0-byte shard of a running process is one that
			// process has just created and not yet sized: it holds no
			// sample (Python's collector fails on it). Failing every such
			// scrape would make gaps.
			for _, p := range problems {
				sc.failures.log(ctx, sc.log, slog.LevelWarn, "skipped "+p.Shard, "skipping a shard or key that holds no sample yet", "err", p)
			}
		default:
			// The error names what fails the scrape, not an orphan
			// beside it that would have passed.
			snap.err = &store.PartialError{Problems: failing}
			sc.failures.log(ctx, sc.log, slog.LevelError, "unreadable shards", "store has unreadable shards; failing the scrape (--partial serves the rest)",
				"shards", len(failing), "err", snap.err)
		}
	case sc.base.Err() != nil:
		// The server stopped the read: its shutdown grace ran out.
		snap.err = fmt.Errorf("read store: %w", errShutdown)
		sc.log.Info("store read stopped: the server is shutting down and --shutdown-grace ran out")
	case errors.Is(err, context.DeadlineExceeded):
		snap.err = errTimeout{sc.timeout}
		sc.self.storeErrors.Inc()
		sc.failures.log(ctx, sc.log, slog.LevelError, "timeout", "store read timed out", "timeout", sc.timeout)
	default:
		snap.err = fmt.Errorf("read store: %w", err)
		sc.self.storeErrors.Inc()
		sc.failures.log(ctx, sc.log, slog.LevelError, "read failed", "store read failed", "err", err)
	}
	if snap.err == nil && !unchanged {
		snap.fams = agg.Families()
	}
	out := 0
	for i := range snap.fams {
		out += len(snap.fams[i].Samples)
	}
	took := time.Since(start)
	// Scrapes from now on start a new read; the self metrics below count
	// this one after that.
	sc.mu.Lock()
	if sc.cur == f {
		sc.cur = nil
	}
	scrapes := f.scrapes
	if tracked {
		stillPrev := sc.last == prev
		sc.last = nil
		if snap.err == nil && len(snap.problems) == 0 {
			sc.last = &lastRead{shards: cur, snap: snap, allKept: allKept, agg: agg}
			if unchanged && stillPrev {
				// The aggregator of the read before, untouched.
				sc.last.agg = prev.agg
			}
		}
	}
	sc.mu.Unlock()
	sc.self.reads.Inc()
	if unchanged {
		sc.self.unchangedReads.Inc()
	}
	if revalued {
		sc.self.revaluedReads.Inc()
	}
	sc.self.readDuration.Observe(took.Seconds())
	sc.self.lastShards.Set(float64(shards))
	sc.self.lastSamples.Set(float64(samples))
	sc.self.lastOutput.Set(float64(out))
	sc.log.Debug("store read", "took", took, "scrapes", scrapes, "shards", shards, "samples", samples, "output_samples", out, "shard_problems", len(problems))
	return snap
}

// takeAggregator returns the aggregator of the last read, Reset, or a new
// one when another read has it.
func (sc *scraper) takeAggregator() *aggregate.Aggregator {
	sc.mu.Lock()
	agg := sc.agg
	sc.agg = nil
	sc.mu.Unlock()
	if agg == nil {
		agg = aggregate.NewFor(sc.client)
		agg.ReuseFamilies(true) // the snapshots' samples are read only
		return agg
	}
	agg.Reset()
	return agg
}

// takeAggregatorOf returns agg, not Reset, when it is the aggregator kept
// for the next read (no read has taken it since), else nil.
func (sc *scraper) takeAggregatorOf(prev *lastRead) *aggregate.Aggregator {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	agg := prev.agg
	if agg == nil || sc.agg != agg || sc.last != prev {
		return nil
	}
	sc.agg = nil
	return agg
}

// putAggregator keeps a read's aggregator for the next read. The families
// it returned stay valid (see aggregate.Aggregator.Reset).
func (sc *scraper) putAggregator(agg *aggregate.Aggregator) {
	sc.mu.Lock()
	sc.agg = agg
	sc.mu.Unlock()
}

// encode returns the snapshot as resp says, restricted to the sample
// names given (all when none), gzipped when asked, encoding it once per
// response, filter and snapshot. extra, when set, gives families to
// append after the store's (promstore's own metrics).
func (snap *snapshot) encode(resp answer, names []string, gz bool, client pyclient.Version, sizes *sync.Map, extra func() ([]*dto.MetricFamily, error)) ([]byte, error) {
	k := bodyKey{resp.contentType, strings.Join(names, "\x00"), gz}
	snap.mu.Lock()
	b := snap.bodies[k]
	if b == nil {
		b = &body{}
		snap.bodies[k] = b
	}
	snap.mu.Unlock()
	b.once.Do(func() {
		var plain []byte
		if gz {
			plain, b.err = snap.encode(resp, names, false, client, sizes, extra)
			if b.err == nil {
				b.data, b.err = gzipBytes(plain)
			}
			return
		}
		fams := snap.fams
		if len(names) > 0 {
			fams = restrict(fams, names, client)
		}
		var buf bytes.Buffer
		if hint, ok := sizes.Load(k.contentType); ok && len(names) == 0 {
			buf.Grow(hint.(int) + hint.(int)/8)
		}
		b.err = encodeFamilies(&buf, resp, fams, names, client, extra)
		b.data = buf.Bytes()
		if len(names) == 0 {
			sizes.Store(k.contentType, len(b.data))
		}
	})
	return b.data, b.err
}

// encodeFamilies writes fams as resp says (render.Exposition: Python's
// exact bytes), then the families extra returns, restricted to names when
// given (before 0.25 none are kept), through expfmt's encoder of the same
// format, OpenMetrics' "# EOF" last.
func encodeFamilies(buf *bytes.Buffer, resp answer, fams []aggregate.Family, names []string, client pyclient.Version, extra func() ([]*dto.MetricFamily, error)) error {
	if extra == nil {
		return resp.expo.Write(buf, fams)
	}
	own, err := extra()
	if err != nil {
		return fmt.Errorf("gather promstore's own metrics: %w", err)
	}
	if len(names) > 0 {
		own = restrictOwn(own, names)
		if !client.NameFilterMultiprocess() {
			own = nil
		}
	}
	expo := resp.expo
	expo.NoEOF = true
	if err := expo.Write(buf, fams); err != nil {
		return err
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	if expo.OpenMetrics {
		format = expfmt.NewFormat(expfmt.TypeOpenMetrics)
	}
	enc := expfmt.NewEncoder(buf, format.WithEscapingScheme(expo.Escaping))
	for _, mf := range own {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode family %s: %w", mf.GetName(), err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		return c.Close()
	}
	return nil
}

func gzipBytes(p []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(p)/4 + 64)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(p); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// passing reports whether p is a problem that passes: an orphan key
// (store.ProblemOrphan), or a 0-byte shard file of a process that runs
// on this host (being created).
// A 0-byte shard passes while its process runs, and also when it is no
// longer empty or gone by now: its process was sizing it at the read
// and has since written and exited (a worker recycled within the
// scrape), or mark_process_dead removed it. Only a file still empty
// after its process is gone (a writer killed between creating and
// sizing it) fails the scrape.
func passing(p *store.ShardError) bool {
	switch {
	case p.Kind == store.ProblemOrphan:
		return true
	case p.Kind == store.ProblemEmptyFile && p.ID.PID != "":
		return store.ProcessAlive(p.ID.PID) == store.AliveYes || noLongerEmpty(p.Path)
	}
	return false
}

// noLongerEmpty reports whether the file at path, found of 0 bytes, has
// changed since: grown, or gone (an empty path cannot be told).
func noLongerEmpty(path string) bool {
	if path == "" {
		return false
	}
	st, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist) || err == nil && st.Size() > 0
}
