package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// totals reads st once, as dump does, and returns jobs_total{kind="a"}
// and the sum of lat_sum.
func totals(ctx context.Context, st store.Reader) (jobs, lat float64, err error) {
	err = st.Scan(ctx, func(s store.Sample) error {
		switch s.Key.Name {
		case "jobs_total":
			jobs += s.Value
		case "lat_sum":
			lat += s.Value
		}
		return nil
	})
	return jobs, lat, err
}

// readWhile reads st back to back on several goroutines until run
// returns, and reports every read whose totals are not the true ones.
func readWhile(t *testing.T, st store.Reader, wantJobs, wantLat float64, run func()) (reads int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n atomic.Int64
	var mu sync.Mutex
	var bad []string
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				jobs, lat, err := totals(ctx, st)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						bad = append(bad, "read failed: "+err.Error())
						mu.Unlock()
					}
					return
				}
				n.Add(1)
				if jobs != wantJobs || lat != wantLat {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("jobs_total %v lat_sum %v", jobs, lat))
					mu.Unlock()
				}
			}
		}()
	}
	run()
	cancel()
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d reads were wrong (want jobs_total %v, lat_sum %v); first: %v", len(bad), n.Load(), wantJobs, wantLat, bad[:min(len(bad), 10)])
	}
	return n.Load()
}

// raceRounds runs rounds of: n more dead Python writers, then a cleanup
// of the dead pids while readers read; with crash, the cleanup stops at
// a random step (as a kill would) and a second run finishes it, the
// readers still reading.
func raceRounds(t *testing.T, open func() (store.Store, *Target), write func(n int), rounds, n int, withLat, crash bool) {
	ctx := context.Background()
	st, target := open()
	reader := Consistent(st)
	total := 0
	var reads int64
	for r := range rounds {
		write(n)
		total += n
		wantLat := 0.0
		if withLat {
			wantLat = 0.5 * float64(total)
		}
		reads += readWhile(t, reader, float64(total), wantLat, func() {
			opts := Options{DeadPIDs: true, MinIdle: -1, Local: true}
			if crash {
				stop := 1 + rand.IntN(n+4)
				steps := 0
				opts.afterStep = func(step string) error {
					if steps++; steps == stop {
						return errCrash
					}
					return nil
				}
			}
			_, err := Run(ctx, target, opts)
			if crash && err != nil && !errors.Is(err, errCrash) || !crash && err != nil {
				t.Errorf("round %d: cleanup: %v", r, err)
			}
			if crash {
				if _, err := Run(ctx, target, Options{DeadPIDs: true, MinIdle: -1, Local: true}); err != nil {
					t.Errorf("round %d: cleanup after the crash: %v", r, err)
				}
			}
		})
		if t.Failed() {
			return
		}
	}
	infos, err := st.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) > 4 {
		t.Errorf("%d shards left after the cleanups, want the archives only", len(infos))
	}
	t.Logf("%d reads during %d cleanups, all exact", reads, rounds)
}

var errCrash = errors.New("killed here (test)")

// TestReadersExactDuringFileCleanup is the race of issue 15: real Python
// processes each count one job and exit; while cleanup --dead-pids
// compacts their shards, promstore's readers (4 goroutines reading back
// to back) always see the true totals.
func TestReadersExactDuringFileCleanup(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			dir := t.TempDir()
			open := func() (store.Store, *Target) {
				st, err := filestore.Open(context.Background(), dir, filestore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return st, FileTarget(st)
			}
			raceRounds(t, open, func(n int) { testenv.WriteDeadJobs(t, n, dir, 0, true) }, 2, 20, true, crash)
		})
	}
}

// TestReadersExactDuringRedisCleanup is the same race on a standalone
// Redis written as the gunicorn exporter writes it.
func TestReadersExactDuringRedisCleanup(t *testing.T) {
	srv := testenv.StartRedis(t)
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			if err := srv.Client().FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			open := func() (store.Store, *Target) {
				st, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{srv.URL()}, Prefix: "gunicorn"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st, RedisTarget(st)
			}
			raceRounds(t, open, func(n int) { testenv.WriteDeadJobs(t, n, srv.URL(), 0, true) }, 2, 20, false, crash)
		})
	}
}

// promstoreBinary builds cmd/promstore once per test process.
var promstoreBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func buildPromstore(t *testing.T) string {
	t.Helper()
	promstoreBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "promstore-cleanup-test-")
		if err != nil {
			promstoreBinary.err = err
			return
		}
		promstoreBinary.path = filepath.Join(dir, "promstore")
		build := exec.Command("go", "build", "-o", promstoreBinary.path, "./cmd/promstore")
		build.Dir = testenv.RepoRoot(t)
		promstoreBinary.out, promstoreBinary.err = build.CombinedOutput()
	})
	if promstoreBinary.err != nil {
		t.Fatalf("go build: %v\n%s", promstoreBinary.err, promstoreBinary.out)
	}
	return promstoreBinary.path
}

// killRounds runs rounds of: write (n more dead writers), then `promstore
// cleanup args` as a process SIGKILLed a random 0-3 ms after journalThere
// reports its journal, then run again to the end, while readers in this
// process read reader back to back; afterKill, when set, is called with
// the true total between the kill and the rerun. It returns how many runs
// were killed and how many of those left their journal.
func killRounds(t *testing.T, rounds, n int, args []string, journalThere func() bool, write func(n int), reader store.Reader, withLat bool, afterKill func(total float64)) (kills, midway int) {
	t.Helper()
	bin := buildPromstore(t)
	total := 0
	for round := range rounds {
		write(n)
		total += n
		wantLat := 0.0
		if withLat {
			wantLat = 0.5 * float64(total)
		}
		readWhile(t, reader, float64(total), wantLat, func() {
			cmd := exec.Command(bin, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it a random moment after its journal appears, so that it
			// dies between two of its steps.
			exited := make(chan struct{})
			go func() {
				for {
					select {
					case <-exited:
						return
					default:
					}
					if journalThere() {
						time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
						_ = cmd.Process.Kill()
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
			err := cmd.Wait()
			close(exited)
			if err != nil {
				kills++
				if journalThere() {
					midway++ // killed between saving and removing its journal
				}
			}
			if afterKill != nil {
				afterKill(float64(total))
			}
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Errorf("round %d: cleanup after the kill: %v\n%s", round, err, out)
			}
		})
		if t.Failed() {
			return
		}
	}
	return kills, midway
}

// TestReadersExactWhileCleanupProcessKilled: `promstore cleanup` runs as
// a process of its own and is SIGKILLed after a random delay, then run
// again to the end; readers in this process read throughout and every
// read is exact.
func TestReadersExactWhileCleanupProcessKilled(t *testing.T) {
	testenv.Python(t)
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	journalThere := func() bool {
		_, err := os.Stat(filepath.Join(dir, JournalName))
		return err == nil
	}
	kills, midway := killRounds(t, 3, 20, []string{"cleanup", "--dir", dir, "--dead-pids", "--min-idle", "0"}, journalThere,
		func(n int) { testenv.WriteDeadJobs(t, n, dir, 0, true) }, Consistent(st), true, nil)
	if t.Failed() {
		return
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.db")); len(m) != 2 {
		t.Errorf("%d shards left, want the counter and histogram archives: %v", len(m), m)
	}
	t.Logf("%d of 3 cleanups killed before they finished, %d of them with a journal left", kills, midway)
}

// TestRedisReadersExactWhileCleanupProcessKilled is the same on a
// standalone Redis written in the exporter's layout: promstore's readers
// are exact, and so is a plain read (no journal, no gate) after every
// kill, each archive and its sources being one MULTI/EXEC.
func TestRedisReadersExactWhileCleanupProcessKilled(t *testing.T) {
	testenv.Python(t)
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}, Prefix: "gunicorn"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	journalKey := RedisTarget(st).Journal.Where()
	journalThere := func() bool {
		n, err := srv.Client().Exists(ctx, journalKey).Result()
		return err == nil && n > 0
	}
	// Whatever step the kill stopped the run at, a plain read is right.
	plain := func(total float64) {
		if jobs, _, err := totals(ctx, st); err != nil || jobs != total {
			t.Errorf("plain read after a killed cleanup: jobs_total %v, want %v (%v)", jobs, total, err)
		}
	}
	kills, midway := killRounds(t, 3, 10, []string{"cleanup", "--redis-url", srv.URL(), "--dead-pids", "--local", "--min-idle", "0"}, journalThere,
		func(n int) { testenv.WriteDeadJobs(t, n, srv.URL(), 0, false) }, Consistent(st), false, plain)
	if t.Failed() {
		return
	}
	infos, err := st.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || !IsArchivePID(infos[0].ID.PID) {
		t.Errorf("shards left: %v, want one counter archive", infos)
	}
	t.Logf("%d of 3 cleanups killed before they finished, %d of them with a journal left", kills, midway)
}
