package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
)

// CleanupOptions are the inputs of `promstore cleanup`.
type CleanupOptions struct {
	IO      *IOStreams
	Store   func(context.Context) (store.Store, error)
	Cleanup cleanup.Options
	// Verbose also lists the shards that are kept, with the reason.
	Verbose bool
	// JSON prints the plan and summary as JSON.
	JSON bool
}

// NewCmdCleanup builds `promstore cleanup`. runF replaces cleanupRun in
// tests.
func NewCmdCleanup(f *Factory, runF func(context.Context, *CleanupOptions) error) *cobra.Command {
	opts := &CleanupOptions{IO: f.IO}
	opts.Cleanup.Now = f.Now
	var sf StoreFlags
	var format string
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove and compact the shards of processes that no longer run",
		Long: `Clean up the shards of processes that are gone, keeping the aggregated output
the same (except for the live* gauges, which Python's mark_process_dead would
have removed):

  live* gauge shards (liveall, livesum, ...)      removed
  counters, histograms, summaries,                merged into one archive shard
  min/max/sum/mostrecent gauges                   per kind and mode, pid
                                                  "archive-<n>" (counter_archive-3.db,
                                                  gauge_max_archive-3.db, ...)
  gauges of mode all (one series per pid)         kept, unless --drop-dead-gauges

Each run writes its archives under a new generation n (one more than any
archive in the store) and folds the older archive of the kind into it, so a
store holds one archive per kind and mode. An archive file keeps the value
layout of the shards it merges (8 bytes when all are from prometheus_client
< 0.18, else 16).

Select pids with --dead-pids (numeric pids with no live process on this host),
--pid (named explicitly) or --stale-after (no shard of the pid updated for that
long: the only safe choice for a Redis store shared by several hosts; for Redis,
--dead-pids needs --local). A pid seen running is never touched, nor one with
a shard updated within --min-idle; the pids of a Redis store are checked only
with --local, so without it --pid takes a pid as dead, as asked (with a
warning), even one that runs. When recently updated shards belong to no
visible process, --dead-pids refuses: those processes may have just exited,
migrate redis-to-file may have written the shards (it stamps the files with the
time it writes them; file-to-redis keeps each source file's mtime), or
promstore runs in another pid namespace (a sidecar container), where every pid
looks dead; the message names the namespace only when no pid of the store is
visible.

Crash safety: the run first writes a journal (promstore-cleanup.journal in the
directory; <prefix>:promstore:cleanup-journal in Redis) holding the archives'
new contents and the shards to delete; a run killed at any point is finished by
the next run, and no sample is ever counted twice in the end state.

Other readers during a run: promstore's own are exact at every step. On a
standalone Redis each archive and the deletion of its sources are one
MULTI/EXEC, so the exporter's collector never counts twice (it can miss
samples for one scrape). In a directory, promstore-cleanup-in-progress.db (a
symbolic link to itself) stands while an archive and its sources both exist:
Python's collector fails on it for that scrape instead of counting twice; a
killed run leaves it until the next run. In a Redis Cluster other readers can
count a step twice. See README "Cleanup while everything runs".`,
		Example: `  promstore cleanup --dir /var/run/prometheus --dead-pids --dry-run
  promstore cleanup --dead-pids --drop-dead-gauges
  promstore cleanup --pid 4100 --pid 4101
  promstore cleanup --redis-url redis://cache:6379/0 --stale-after 24h --orphans`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "text":
			case "json":
				opts.JSON = true
			default:
				return validateChoice("--format", format, cleanupFormats)
			}
			if cmd.Flags().Changed("stale-after") && opts.Cleanup.StaleAfter <= 0 {
				return UsageErrorf("--stale-after must be positive")
			}
			if cmd.Flags().Changed("min-idle") && opts.Cleanup.MinIdle == 0 {
				opts.Cleanup.MinIdle = -1 // 0 given: no guard
			}
			c := opts.Cleanup
			c.Local = true // checked against the store in cleanupRun
			if err := c.Validate(); err != nil {
				return UsageErrorf("%v", err)
			}
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return cleanupRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&opts.Cleanup.DeadPIDs, "dead-pids", false, "select numeric pids with no live process on this host")
	fl.StringArrayVar(&opts.Cleanup.PIDs, "pid", nil, "select this pid (repeatable); a pid seen running is still never touched (Redis: seen only with --local)")
	fl.DurationVar(&opts.Cleanup.StaleAfter, "stale-after", 0, "select pids none of whose shards was updated for this long (e.g. 24h)")
	fl.BoolVar(&opts.Cleanup.DropDeadGauges, "drop-dead-gauges", false, "also remove gauge shards of mode all of selected pids")
	fl.DurationVar(&opts.Cleanup.MinIdle, "min-idle", cleanup.DefaultMinIdle, "never treat a pid as dead when one of its shards changed this recently (0 disables)")
	fl.BoolVar(&opts.Cleanup.Local, "local", false, "every writer of the Redis store runs on this host, so pids can be checked (file stores always are)")
	fl.BoolVar(&opts.Cleanup.Orphans, "orphans", false, "Redis: also remove orphan metric hashes and shadowed modeless gauge hashes")
	fl.BoolVarP(&opts.Cleanup.DryRun, "dry-run", "n", false, "print the plan, change nothing")
	fl.BoolVarP(&opts.Verbose, "verbose", "v", false, "also list the shards that are kept, and why")
	fl.StringVarP(&format, "format", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(cleanupFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// cleanupFormats are the values of cleanup's --format.
var cleanupFormats = []string{"text", "json"}

func cleanupRun(ctx context.Context, opts *CleanupOptions) error {
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := cleanup.NewTarget(st)
	if err != nil {
		return err
	}
	t.OnGateWait = func(msg string) { fmt.Fprintf(opts.IO.ErrOut, "promstore: %s...\n", msg) }
	res, runErr := cleanup.Run(ctx, t, opts.Cleanup)
	if runErr == nil && res != nil && res.Plan != nil && len(res.Plan.Shards) == 0 && len(res.Orphans) == 0 {
		_ = checkShards(ctx, opts.IO.ErrOut, st, false)
	}
	if res != nil {
		var werr error
		if opts.JSON {
			werr = cleanupJSON(opts, t, res, st.Describe(), runErr)
		} else {
			werr = cleanupText(opts, t, res, runErr)
		}
		if werr != nil && runErr == nil {
			runErr = fmt.Errorf("write output: %w", werr)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(opts.IO.ErrOut, "promstore: warning: %s\n", w)
		}
	}
	if runErr != nil {
		return fmt.Errorf("cleanup of %s: %w", st.Describe(), runErr)
	}
	return nil
}

// cleanupText writes the plan and what became of it; runErr is the run's
// error (nil when it went through).
func cleanupText(opts *CleanupOptions, t *cleanup.Target, res *cleanup.Result, runErr error) error {
	var b strings.Builder
	would := ""
	if res.DryRun {
		would = "would "
	}
	if j := res.Recovered; j != nil {
		fmt.Fprintf(&b, "%sfinish the cleanup interrupted at %s (journal %s): %d archive(s), %d other shard(s) to delete\n",
			would, j.Started, t.Journal.Where(), len(j.Archives), len(j.Delete))
		if res.DryRun {
			b.WriteString("run without --dry-run to finish it; a new plan is made after that\n")
		}
	}
	orphanDel, orphanBytes := 0, int64(0)
	for _, o := range res.Orphans {
		if o.Spared {
			if opts.Verbose {
				fmt.Fprintf(&b, "keep     %s  (changed within --min-idle: %s)\n", o.Key, o.Reason)
			}
			continue
		}
		orphanDel++
		orphanBytes += o.Bytes
		fmt.Fprintf(&b, "%-8s %s  (%s)\n", "delete", o.Key, o.Reason)
	}
	p := res.Plan
	if p == nil {
		_, err := fmt.Fprint(opts.IO.Out, b.String())
		return err
	}
	for _, sp := range p.Shards {
		name := cleanupShardName(sp)
		switch sp.Action {
		case cleanup.Keep:
			if opts.Verbose || leftUnread(sp) {
				fmt.Fprintf(&b, "keep     %s  (%s)\n", name, sp.Reason)
			}
		case cleanup.Compact:
			fmt.Fprintf(&b, "compact  %s -> %s  (%s)\n", name, sp.Archive, sp.Reason)
		default:
			fmt.Fprintf(&b, "%-8s %s  (%s)\n", sp.Action, name, sp.Reason)
		}
	}
	if !opts.Verbose {
		namedPIDsKept(&b, p, opts.Cleanup.PIDs)
	}
	for _, a := range p.Archives {
		layout := ""
		if a.Layout != 0 {
			layout = fmt.Sprintf(", %d-byte layout", a.Layout)
		}
		verb := "write"
		if a.Existing != nil {
			verb = "update"
		}
		fmt.Fprintf(&b, "%s%s archive %s: %d shard(s) merged, %d samples%s\n", would, verb, a.ID, len(a.Sources), len(a.Samples), layout)
	}
	s := p.Summary()
	freed := formatBytes(s.BytesFreed + orphanBytes)
	switch {
	case res.DryRun:
		b.WriteString("dry run, nothing changed: ")
		freed = "up to " + freed
	case !res.Done:
		// The run failed (its error follows on stderr): say what was
		// planned, not what happened.
		// A rerun alone gets past a lost connection, not a full disk.
		rerun := "a rerun finishes it"
		if c := lastingCause(runErr); c != "" {
			rerun += " once this is mended: " + c
		}
		fmt.Fprintf(&b, "NOT DONE: the cleanup failed before it finished (error below); the plan above was not carried out, or only in part (%s): %d shard(s) to remove (live gauges), %d to compact into %d archive(s), %d to drop, %d kept; up to %s to free",
			rerun, s.Removed, s.Compacted, s.Archives, s.Dropped, s.Kept, freed)
		if len(res.Orphans) > 0 || opts.Cleanup.Orphans {
			fmt.Fprintf(&b, "; %d orphan key(s) to delete", orphanDel)
		}
		b.WriteByte('\n')
		_, err := fmt.Fprint(opts.IO.Out, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d shard(s) removed (live gauges), %d compacted into %d archive(s), %d dropped, %d kept; %s freed",
		s.Removed, s.Compacted, s.Archives, s.Dropped, s.Kept, freed)
	switch {
	case !opts.Cleanup.Orphans && len(res.Orphans) == 0:
	case res.DryRun:
		fmt.Fprintf(&b, "; %d orphan key(s) would be deleted", orphanDel)
	default:
		fmt.Fprintf(&b, "; %d orphan key(s) deleted", orphanDel)
	}
	b.WriteByte('\n')
	_, err := fmt.Fprint(opts.IO.Out, b.String())
	return err
}

type cleanupShardJSON struct {
	Shard   string `json:"shard"`
	Action  string `json:"action"`
	Archive string `json:"archive,omitempty"`
	Reason  string `json:"reason"`
	Bytes   int64  `json:"bytes"`
}

// cleanupSummaryJSON is the plan's summary as the text's last line gives
// it: bytes_freed counts the orphan keys' memory too, and orphans the
// keys deleted (or, in a dry run, to delete).
type cleanupSummaryJSON struct {
	cleanup.Summary
	Orphans int `json:"orphans"`
}

// cleanupJSON writes the run's JSON document; runErr, the error the run
// ends with (a refusal, a failure part-way), is in it as "error".
func cleanupJSON(opts *CleanupOptions, t *cleanup.Target, res *cleanup.Result, storeName string, runErr error) error {
	out := struct {
		Store     string             `json:"store"`
		DryRun    bool               `json:"dry_run"`
		Done      bool               `json:"done"`
		Error     string             `json:"error,omitempty"`
		Recovered map[string]any     `json:"recovered_journal,omitempty"`
		Shards    []cleanupShardJSON `json:"shards"`
		Archives  []map[string]any   `json:"archives"`
		Orphans   []cleanup.Orphan   `json:"orphans,omitempty"`
		Summary   cleanupSummaryJSON `json:"summary"`
		Warnings  []string           `json:"warnings,omitempty"`
	}{Store: storeName, DryRun: res.DryRun, Done: res.Done, Warnings: res.Warnings,
		Shards: []cleanupShardJSON{}, Archives: []map[string]any{}}
	if runErr != nil {
		out.Error = runErr.Error()
	}
	for _, o := range res.Orphans {
		// UTC, as every time in promstore's JSON.
		o.Updated = o.Updated.UTC()
		out.Orphans = append(out.Orphans, o)
		if !o.Spared {
			out.Summary.Orphans++
			out.Summary.BytesFreed += o.Bytes
		}
	}
	if j := res.Recovered; j != nil {
		out.Recovered = map[string]any{"where": t.Journal.Where(), "started": j.Started, "archives": len(j.Archives), "delete": len(j.Delete)}
	}
	if p := res.Plan; p != nil {
		for _, sp := range p.Shards {
			if sp.Action == cleanup.Keep && !opts.Verbose && !leftUnread(sp) {
				continue
			}
			j := cleanupShardJSON{Shard: cleanupShardName(sp), Action: string(sp.Action), Reason: sp.Reason, Bytes: sp.Info.Bytes}
			if sp.Action == cleanup.Compact {
				j.Archive = sp.Archive.String()
			}
			out.Shards = append(out.Shards, j)
		}
		for _, a := range p.Archives {
			out.Archives = append(out.Archives, map[string]any{
				"shard": a.ID.String(), "sources": len(a.Sources), "samples": len(a.Samples),
				"layout": a.Layout, "existed": a.Existing != nil, "bytes_after": a.NewBytes,
			})
		}
		orphanBytes := out.Summary.BytesFreed
		out.Summary.Summary = p.Summary()
		out.Summary.BytesFreed += orphanBytes
	}
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// cleanupShardName names a shard of the plan: its kind, mode and pid, or,
// for a file that is no shard (foo.db), where it is (its ID would print
// as "_").
func cleanupShardName(sp cleanup.ShardPlan) string {
	if sp.Info.ID.Kind == "" {
		return sp.Info.Location
	}
	return sp.Info.ID.String()
}

// leftUnread reports whether sp is a shard of a selected pid left alone
// because it cannot be read whole: listed without -v, as dump warns of it,
// since the run does not deal with every shard of that pid.
func leftUnread(sp cleanup.ShardPlan) bool {
	return sp.Selected && sp.Action == cleanup.Keep && sp.Info.Unreadable
}

// namedPIDsKept says why a pid named by --pid is left alone as a whole
// (running, changed within --min-idle, ...) or that it has no shard, which
// the plan's lines, listing only what changes, would not show.
func namedPIDsKept(b *strings.Builder, p *cleanup.Plan, pids []string) {
	for _, pid := range pids {
		found, acted, reason := false, false, ""
		for _, sp := range p.Shards {
			if sp.Info.ID.PID != pid {
				continue
			}
			found = true
			if sp.Action != cleanup.Keep {
				acted = true
				break
			}
			if reason == "" {
				reason = sp.Reason
			}
		}
		switch {
		case !found:
			fmt.Fprintf(b, "keep     pid %s: no shard of it in the store\n", pid)
		case !acted:
			fmt.Fprintf(b, "keep     pid %s: %s (-v lists its shards)\n", pid, reason)
		}
	}
}
