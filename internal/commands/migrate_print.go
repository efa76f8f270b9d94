package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/promstore/promstore/internal/migrate"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
)

func migrateSummary(p *migrate.Plan, elapsed time.Duration) string {
	conflicts := fmt.Sprintf("%d conflicts", p.Conflicts)
	if p.Conflicts > 0 {
		verb := map[migrate.Policy]string{migrate.Skip: "skipped", migrate.Overwrite: "overwritten", migrate.Sum: "summed"}[p.Policy]
		conflicts += " " + verb
	}
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.Samples) / elapsed.Seconds()
	}
	return fmt.Sprintf("migrated %d shards, %d samples (%d new, %d already present, %s) in %.2fs (%.0f samples/s)",
		len(p.Shards), p.Samples, p.New, p.Same, conflicts, elapsed.Seconds(), rate)
}

func warnTTLs(ctx context.Context, w io.Writer, ts store.TTLSampler, cfg redisstore.Config) {
	s, err := ts.SampleTTLs(ctx, 200)
	if err != nil {
		fmt.Fprintf(w, "promstore: warning: could not check the target's key TTLs: %v\n", err)
		return
	}
	if s.WithTTL == 0 {
		return
	}
	what := "the keys this run writes get no TTL (give --ttl to set one)"
	if cfg.TTL > 0 {
		what = fmt.Sprintf("the keys this run writes expire after %s", cfg.TTL)
	}
	// A rerun writes nothing for a sample already present: such keys (of
	// an earlier run with --ttl, or the exporter's) keep their TTL.
	what += "; keys it finds already present keep theirs, so those of an earlier run with --ttl still expire (redis-cli PERSIST removes a key's TTL)"
	fmt.Fprintf(w, "promstore: warning: %d of %d sampled metric keys already in the target prefix expire (TTL %s to %s); %s\n",
		s.WithTTL, s.Sampled, s.MinTTL.Round(time.Second), s.MaxTTL.Round(time.Second), what)
}

func warnLegacyTimestamps(w io.Writer, p *migrate.Plan) {
	n := 0
	for _, sp := range p.Shards {
		if sp.Target.Kind == store.KindGauge && strings.HasSuffix(sp.Target.Mode, "mostrecent") {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "promstore: warning: the legacy 8-byte layout keeps no timestamps: %d mostrecent gauge shards lose theirs; prometheus_client < 0.18, which reads this layout, knows no mostrecent modes and serves those series one sample per process, as mode all (so does promstore with --python-client 0.17 or older; newer clients leave series without a timestamp out)\n", n)
	}
}

func printPlan(w io.Writer, p *migrate.Plan, src, dst store.Store) {
	fmt.Fprintln(w, "dry run: nothing written")
	fmt.Fprintf(w, "source: %s\n", src.Describe())
	fmt.Fprintf(w, "target: %s\n", dst.Describe())
	create := fmt.Sprintf("%d samples to create", p.New)
	if sk, ok := store.As[store.SampleKeys](dst); ok {
		create += fmt.Sprintf(" (%d Redis keys)", sk.KeysPerSample()*p.New)
	}
	fmt.Fprintf(w, "plan: %d shards, %d samples: %s, %d already present, %d conflicts (on conflict: %s); %d shards to write\n",
		len(p.Shards), p.Samples, create, p.Same, p.Conflicts, p.Policy, p.WriteShards())
	if len(p.Shards) > 0 {
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE SHARD\tTARGET SHARD\tSAMPLES\tNEW\tPRESENT\tCONFLICTS\tTO WRITE")
		for _, sp := range p.Shards {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", sp.Source, sp.Target, len(sp.Items), sp.New, sp.Same, sp.Conflicts, sp.Writes)
		}
		tw.Flush()
	}
	if p.Conflicts > 0 {
		fmt.Fprintln(w, "conflicts:")
		printConflicts(w, p, 0)
		if p.Policy == migrate.Fail {
			fmt.Fprintln(w, "a real run would fail: choose --on-conflict skip, overwrite or sum (with --journal)")
		}
	}
}

func printConflicts(w io.Writer, p *migrate.Plan, limit int) {
	list := p.ConflictList(limit)
	for _, c := range list {
		fmt.Fprintf(w, "  %s %s: source %s, target %s\n", c.Shard, render.SampleText(c.Key.Name, c.Key.Labels, render.EscapeColumns), valueText(c.Source), valueText(c.Target))
	}
	if limit > 0 && p.Conflicts > len(list) {
		fmt.Fprintf(w, "  ... and %d more\n", p.Conflicts-len(list))
	}
}

func valueText(s store.Sample) string {
	if s.Timestamp != 0 {
		return store.PyRepr(s.Value) + " @" + store.PyRepr(s.Timestamp)
	}
	return store.PyRepr(s.Value)
}

// maxPartlyListed is how many partly written shards a stop report lists.
const maxPartlyListed = 20

// printStopReport says what a migration that stopped part-way left in the
// target, read back from it (the progress only counts the shards whose
// writes were acknowledged; a shard that failed may be written in part).
// Interrupted, it does not read the target and says what was confirmed.
func printStopReport(ctx context.Context, w io.Writer, p *migrate.Plan, dst store.Reader, prog migrate.Progress, cause error) {
	again := "run the same command again to complete it"
	if fix := lastingCause(cause); fix != "" {
		again = fix + "; once that is mended, " + again
	}
	if ctx.Err() != nil {
		fmt.Fprintf(w, "promstore: migration interrupted: %d of %d shards confirmed written (%d samples), more may be in the target; %s\n",
			prog.Shards, prog.TotalShards, prog.Written, again)
		return
	}
	r, err := migrate.ReadBack(ctx, p, dst)
	if err != nil {
		fmt.Fprintf(w, "promstore: migration stopped part-way (error below): %d of %d shards confirmed written (%d samples); the target may hold more: %v; %s\n",
			prog.Shards, prog.TotalShards, prog.Written, err, again)
		return
	}
	fmt.Fprintf(w, "promstore: migration stopped part-way (error below); read back, the target holds %d of the %d samples to write: %d of %d shards complete, %d partly written, %d not started\n",
		r.Present, r.ToWrite, r.Complete, r.Shards, r.Partial, r.Untouched)
	if len(r.PartialShards) > 0 {
		fmt.Fprintln(w, "promstore: partly written shards (a rerun finishes them):")
		for i, ps := range r.PartialShards {
			if i == maxPartlyListed {
				fmt.Fprintf(w, "promstore:   ... and %d more\n", len(r.PartialShards)-i)
				break
			}
			fmt.Fprintf(w, "promstore:   %s: %d of %d samples", ps.Shard, ps.Present, ps.ToWrite)
			switch n := len(ps.Unreadable); n {
			case 0:
			case 1:
				fmt.Fprintf(w, ", 1 unreadable key (%v)", ps.Unreadable[0])
			default:
				fmt.Fprintf(w, ", %d unreadable keys (first: %v)", n, ps.Unreadable[0])
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "promstore: "+again)
}

// lastingCause names what stopped a migration when running it again
// cannot help before the cause is mended (an ACL, a replica, a full
// server or disk); "" for a cause a rerun may get past (a connection
// lost, a timeout, an interrupt).
func lastingCause(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "NOPERM"):
		return "the Redis user may not write these keys (its ACL): give one that may"
	case strings.Contains(msg, "READONLY"):
		return "the server is a read-only replica: give the master's address"
	case strings.Contains(msg, "OOM "):
		return "Redis is out of memory (maxmemory with noeviction): raise maxmemory or free memory"
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full"
	case errors.Is(err, syscall.EROFS):
		return "the file system is read-only"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied: run as a user who may write the directory"
	}
	return ""
}

// runningConflicts returns the pids of running processes (a source
// directory on this host only) whose shards hold conflicting samples.
func runningConflicts(p *migrate.Plan, opts *MigrateOptions) []string {
	if opts.Direction != FileToRedis || p.Conflicts == 0 {
		return nil
	}
	alive := opts.alive()
	var pids []string
	seen := map[string]bool{}
	for _, sp := range p.Shards {
		if pid := sp.Source.PID; sp.Conflicts > 0 && !seen[pid] {
			seen[pid] = true
			if alive(pid) == store.AliveYes {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// warnRunningConflicts says, when conflicting samples belong to running
// processes, that their values most likely grew since an earlier
// migration wrote them: overwrite brings the current values over, and sum
// would add them to what that run wrote, counting them twice.
func warnRunningConflicts(w io.Writer, p *migrate.Plan, pids []string) {
	if len(pids) == 0 {
		return
	}
	what := "overwrite takes their current values"
	if p.Policy == migrate.Sum {
		what = "this run's sum adds the source to what that run wrote: counted twice if so (overwrite takes their current values)"
	}
	fmt.Fprintf(w, "promstore: warning: conflicts in shards of %d running process(es) (pid %s): their values grow while they run, so an earlier migration of this directory most likely wrote these samples; %s\n",
		len(pids), shortList(pids), what)
}

// warnKeptRunning names the source shards --delete-source kept because
// their processes run: a worker writes on into the file it has mapped,
// and an unlinked file would lose every later increment. The rerun it
// advises for when they have stopped overwrites: their shards grow past
// what this run wrote, conflicts a default rerun stops on, and a sum
// would count the migrated part twice.
func warnKeptRunning(w io.Writer, kept []store.ShardID) {
	if len(kept) == 0 {
		return
	}
	names := make([]string, len(kept))
	for i, id := range kept {
		names[i] = id.String()
	}
	fmt.Fprintf(w, "promstore: warning: --delete-source: kept %d source shard(s) of running processes: %s (deleting them would lose what those workers write next; once they have stopped, run the migration again with --on-conflict overwrite --delete-source: their values will have grown past what this run migrated, so a rerun without --on-conflict stops on those conflicts, and --on-conflict sum would add their values to the part this run migrated, counting it twice)\n",
		len(kept), shortList(names))
}
