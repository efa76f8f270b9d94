package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/migrate"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
)

// Migration directions.
const (
	FileToRedis = "file-to-redis"
	RedisToFile = "redis-to-file"
)

// MigrateOptions are the inputs of `promstore migrate`.
type MigrateOptions struct {
	IO *IOStreams
	// Direction is FileToRedis or RedisToFile.
	Direction string
	// Source and Target open the stores; Target gets dryRun so that a dry
	// run into a directory that does not exist yet creates nothing.
	Source func(ctx context.Context) (store.Store, error)
	Target func(ctx context.Context, dryRun bool) (store.Store, error)
	// Dir, Layout (8 or 16, redis-to-file) and Redis describe the stores;
	// LayoutGiven says --layout was given (else an existing directory's
	// layout wins over the default).
	Dir         string
	Layout      int
	LayoutGiven bool
	Redis       redisstore.Config

	PIDPrefix      string
	FirstMigration bool
	OnConflict     migrate.Policy
	Journal        string
	DryRun         bool
	DeleteSource   bool
	// Workers is the number of shards written at once.
	Workers int
	// ProgressInterval throttles the progress bar (default 100ms).
	ProgressInterval time.Duration
	Now              func() time.Time
	// AfterShard, when set, is called after each written shard (tests use
	// it to interrupt a run).
	AfterShard func(migrate.Progress)
	// Alive tells whether a shard's process runs (store.ProcessAlive when
	// nil).
	Alive func(pid string) store.Liveness
	// Maps tells whether process pid maps the file at path, an error when
	// that cannot be told (redis-to-file; store.MapsFile when nil).
	Maps func(pid, path string) (bool, error)
}

// alive is opts.Alive, store.ProcessAlive when that is nil.
func (opts *MigrateOptions) alive() func(pid string) store.Liveness {
	if opts.Alive != nil {
		return opts.Alive
	}
	return store.ProcessAlive
}

// pidPrefixRE is what --pid-prefix accepts: nothing that would split a
// shard file name ("_"), a Redis key (":") or a glob.
var pidPrefixRE = regexp.MustCompile(`^[A-Za-z0-9.-]+$`)

// NewCmdMigrate builds `promstore migrate` with its two directions. runF
// replaces migrateRun in tests.
func NewCmdMigrate(f *Factory, runF func(context.Context, *MigrateOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Copy a store between a multiprocess directory and Redis, safely",
		Long: `Copy every shard of one store into another: a PROMETHEUS_MULTIPROC_DIR into the
gunicorn-prometheus-exporter Redis layout (file-to-redis), or back
(redis-to-file, for rollback).

Kind, gauge mode, pid, value and timestamp are kept, and so is every sample key
byte for byte: a Python worker that later writes the same series with the same
pid through the exporter updates the very keys the migration wrote. Legacy
3-element keys become the 4-element keys Python would write.

Safety:
  - Nothing is written before the whole plan is known. --dry-run prints it
    (shards, samples, keys to create, conflicts) and stops.
  - A conflict is a target sample that already exists with another value or
    timestamp. --on-conflict says what to do: fail (default: nothing is
    written, the conflicts are listed, exit 1), skip, overwrite, or sum
    (counters, histograms and summaries; needs --journal so that a rerun
    does not add the source twice).
  - Writes are idempotent: a target sample equal to the source is "already
    present", not a conflict. Running a finished migration again changes
    nothing; running an interrupted one again completes it.
  - After writing, the target's shards of the plan are read back and compared
    with what they must hold, sample by sample and as aggregated output; a
    mismatch exits 1. The source is only deleted with --delete-source, after
    verification passed, and only if it has not changed meanwhile.`,
	}
	cmd.AddCommand(newCmdMigrateDirection(f, FileToRedis, runF), newCmdMigrateDirection(f, RedisToFile, runF))
	return cmd
}

func newCmdMigrateDirection(f *Factory, dir string, runF func(context.Context, *MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{IO: f.IO, Direction: dir, Now: f.Now}
	var (
		rf         RedisFlags
		onConflict string
		layout     string
		ttl        time.Duration
	)
	cmd := &cobra.Command{Args: noArgs}
	switch dir {
	case FileToRedis:
		cmd.Use = FileToRedis
		cmd.Short = "Write every shard of a multiprocess directory into Redis"
		cmd.Example = `  promstore migrate file-to-redis --dir /var/run/prom --redis-url redis://redis:6379/0 --dry-run
  promstore migrate file-to-redis --dir /var/run/prom --redis-url redis://redis:6379/0 --pid-prefix web1-
  promstore migrate file-to-redis --dir ./store --redis-url redis://localhost:6379 --on-conflict sum --journal migrate.journal`
	case RedisToFile:
		cmd.Use = RedisToFile
		cmd.Short = "Write every shard of a Redis store into *.db files Python's collector reads (rollback)"
		cmd.Example = `  promstore migrate redis-to-file --redis-url redis://redis:6379/0 --dir /var/run/prom
  promstore migrate redis-to-file --redis-url redis://redis:6379/0 --dir ./old --layout legacy   # prometheus_client < 0.18`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if opts.Dir == "" {
			return UsageErrorf("--dir is required: the multiprocess directory to %s", map[string]string{FileToRedis: "read", RedisToFile: "write"}[dir])
		}
		pol, err := migrate.ParsePolicy(onConflict)
		if err != nil {
			return UsageErrorf("--on-conflict: %v", err)
		}
		opts.OnConflict = pol
		if pol == migrate.Sum && opts.Journal == "" {
			return UsageErrorf("--on-conflict sum needs --journal FILE: it records the sums so that a rerun does not add the source twice")
		}
		if opts.PIDPrefix != "" && !pidPrefixRE.MatchString(opts.PIDPrefix) {
			return UsageErrorf("--pid-prefix %q: use letters, digits, '.' and '-' only (no '_' or ':', which split shard names and keys)", opts.PIDPrefix)
		}
		if dir == RedisToFile {
			switch layout {
			case "new", "16":
				opts.Layout = filestore.LayoutTimestamp
			case "legacy", "8":
				opts.Layout = filestore.LayoutLegacy
			default:
				return UsageErrorf("--layout must be new (16 bytes, prometheus_client >= 0.18) or legacy (8 bytes), not %q", layout)
			}
			opts.LayoutGiven = cmd.Flags().Changed("layout")
		}
		if cmd.Flags().Changed("ttl") && ttl <= 0 {
			return UsageErrorf("--ttl must be positive, not %s", ttl)
		}
		if !rf.Given() && !rf.envGiven(f) {
			return UsageErrorf("no Redis store given: use --redis-url (or set PROMETHEUS_REDIS_URL or REDIS_HOST)")
		}
		cfg, err := rf.Resolve(f)
		if err != nil {
			return err
		}
		cfg.TTL = ttl
		opts.Redis = cfg
		f.prepareHeap()
		fileStore := func(ctx context.Context, create bool) (store.Store, error) {
			if create {
				if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
					return nil, fmt.Errorf("create target directory: %w", err)
				}
			}
			return filestore.Open(ctx, opts.Dir, filestore.Options{Layout: opts.Layout})
		}
		redisStore := func(ctx context.Context) (store.Store, error) { return redisstore.Open(ctx, opts.Redis) }
		if dir == FileToRedis {
			opts.Source = func(ctx context.Context) (store.Store, error) { return fileStore(ctx, false) }
			opts.Target = func(ctx context.Context, _ bool) (store.Store, error) { return redisStore(ctx) }
		} else {
			opts.Source = redisStore
			opts.Target = func(ctx context.Context, dryRun bool) (store.Store, error) {
				if dryRun {
					if _, err := os.Stat(opts.Dir); errors.Is(err, os.ErrNotExist) {
						return emptyStore{"dir " + opts.Dir + " (does not exist yet)"}, nil
					}
				}
				return fileStore(ctx, !dryRun)
			}
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return migrateRun(cmd.Context(), opts)
	}
	fl := cmd.Flags()
	what := map[string]string{FileToRedis: "source", RedisToFile: "target"}[dir]
	fl.StringVarP(&opts.Dir, "dir", "d", "", "the "+what+" multiprocess directory (required)")
	rf.Register(cmd)
	fl.StringVar(&opts.PIDPrefix, "pid-prefix", "", "put this before every pid in the target (keeps several hosts' shards apart)")
	fl.StringVar(&onConflict, "on-conflict", "fail", "what to do with target samples that exist with another value: fail, skip, overwrite or sum")
	fl.StringVar(&opts.Journal, "journal", "", "file recording the sums of --on-conflict sum (required with it; keep it for reruns)")
	fl.BoolVarP(&opts.DryRun, "dry-run", "n", false, "print the plan and write nothing")
	fl.BoolVar(&opts.DeleteSource, "delete-source", false, "delete the migrated source shards after verification passed")
	fl.BoolVar(&opts.FirstMigration, "first-migration", false, "the source was never migrated into the target before: skip the check that refuses a rerun after a compaction")
	fl.IntVar(&opts.Workers, "workers", 4, "shards written at once")
	if dir == FileToRedis {
		fl.DurationVar(&ttl, "ttl", 0, "expire the written keys after this long (default: no TTL)")
	} else {
		fl.StringVar(&layout, "layout", "new", "shard layout to write: new (16-byte value+timestamp) or legacy (8-byte, prometheus_client < 0.18); without it, a directory's existing shards' layout")
		_ = cmd.RegisterFlagCompletionFunc("layout", cobra.FixedCompletions([]string{"new", "legacy"}, cobra.ShellCompDirectiveNoFileComp))
	}
	_ = cmd.RegisterFlagCompletionFunc("on-conflict", cobra.FixedCompletions(migrate.Policies, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("dir")
	return cmd
}

// keepDirLayout makes a migration into a directory that already holds
// shards write them in their layout: a directory of both layouts is one
// that Python's collector of either release cannot read. Without --layout
// the directory's layout is taken (dst opened again with it); a --layout
// that would mix them, or a directory that mixes them already, is an
// error, before anything is written.
func keepDirLayout(ctx context.Context, opts *MigrateOptions, dst store.Store) (store.Store, error) {
	// A target that cannot be listed is the plan's read's to report.
	infos, _ := dst.Shards(ctx)
	count := map[int]int{}
	for _, in := range infos {
		if in.Samples > 0 && (in.Layout == filestore.LayoutLegacy || in.Layout == filestore.LayoutTimestamp) {
			count[in.Layout]++
		}
	}
	name := map[int]string{filestore.LayoutLegacy: "8-byte (--layout legacy)", filestore.LayoutTimestamp: "16-byte (--layout new)"}
	switch {
	case count[filestore.LayoutLegacy] > 0 && count[filestore.LayoutTimestamp] > 0:
		return dst, fmt.Errorf("target dir %s already holds shards of both layouts (%d of 8 bytes, %d of 16), which Python's collector cannot read; see promstore fsck --dir %s: nothing written",
			opts.Dir, count[filestore.LayoutLegacy], count[filestore.LayoutTimestamp], opts.Dir)
	case len(count) == 0 || count[opts.Layout] > 0:
		return dst, nil
	}
	have := filestore.LayoutLegacy
	if count[filestore.LayoutTimestamp] > 0 {
		have = filestore.LayoutTimestamp
	}
	if opts.LayoutGiven {
		return dst, fmt.Errorf("target dir %s holds %d shards in the %s layout: writing the %s layout beside them would make a directory Python's collector cannot read; give --layout for its layout, or another directory: nothing written",
			opts.Dir, count[have], name[have], name[opts.Layout])
	}
	fmt.Fprintf(opts.IO.ErrOut, "promstore: target dir %s holds %d shards in the %s layout: writing in that layout\n", opts.Dir, count[have], name[have])
	was := opts.Layout
	opts.Layout = have // what opts.Target opens the directory with
	nd, err := opts.Target(ctx, opts.DryRun)
	if err != nil {
		opts.Layout = was
		return dst, fmt.Errorf("open target: %w", err)
	}
	dst.Close()
	return nd, nil
}

// runningTargets returns an error naming the shards a redis-to-file plan
// would write over whose files exist and are mapped by their running
// pids: a shard is written as a new file renamed over the old one, and
// the running worker would write on into the old file it has mapped,
// every later increment lost. Like cleanup, migrate never touches a
// running pid's shard. Redis pids may come from other hosts: a pid that
// runs here but does not map its shard's file (prometheus_client keeps
// it mapped while it runs) is not the file's writer, and the shard is
// written. Where that cannot be told (no /proc, permission denied), the
// shard is refused as the writer's, with a word that the pid may be
// unrelated.
func runningTargets(plan *migrate.Plan, dst store.Store, opts *MigrateOptions) error {
	alive := opts.alive()
	maps := opts.Maps
	if maps == nil {
		maps = store.MapsFile
	}
	loc, _ := dst.(store.ShardLocator)
	var mapped, unknown []string
	var why error
	for _, sp := range plan.Shards {
		if sp.Writes == 0 || alive(sp.Target.PID) != store.AliveYes {
			continue
		}
		err := errors.New("the target cannot name its shard files")
		if loc != nil {
			var path string
			if path, err = loc.ShardLocation(sp.Target); err == nil {
				if _, serr := os.Lstat(path); errors.Is(serr, fs.ErrNotExist) {
					continue // a new file: nothing of a writer's replaced
				}
				var ok bool
				if ok, err = maps(sp.Target.PID, path); err == nil {
					if ok {
						mapped = append(mapped, sp.Target.String())
					}
					continue // runs, but is not the file's writer
				}
			}
		}
		unknown = append(unknown, sp.Target.String())
		if why == nil {
			why = err
		}
	}
	if len(mapped) == 0 && len(unknown) == 0 {
		return nil
	}
	var parts []string
	if len(mapped) > 0 {
		parts = append(parts, fmt.Sprintf("%d shard(s) to write are mapped by their processes, running on this host: %s", len(mapped), shortList(mapped)))
	}
	if len(unknown) > 0 {
		parts = append(parts, fmt.Sprintf("%d shard(s) to write have pids of processes running on this host, which may be their writers: %s (whether they map the files cannot be told: %v; the pids may be unrelated processes, a Redis shard's pid may come from another host: --pid-prefix writes the shards under other names and avoids this)", len(unknown), shortList(unknown), why))
	}
	return fmt.Errorf("target dir %s: %s; nothing written: a shard is replaced by a new file, and a running worker writes on into the file it has mapped, losing every later increment. Stop those processes (or migrate into another directory), then run again",
		opts.Dir, strings.Join(parts, "; "))
}

// shortList joins names, at most 10 of them.
func shortList(names []string) string {
	shown := names
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return strings.Join(shown, ", ")
}

func migrateRun(ctx context.Context, opts *MigrateOptions) error {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	src, err := opts.Source(ctx)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	src = cleanup.Consistent(src)
	defer src.Close()
	dst, err := opts.Target(ctx, opts.DryRun)
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer func() { dst.Close() }() // keepDirLayout may open it again
	errOut := opts.IO.ErrOut

	mopts := migrate.Options{
		PIDPrefix:      opts.PIDPrefix,
		FirstMigration: opts.FirstMigration,
		OnConflict:     opts.OnConflict,
		Journal:        opts.Journal,
		Workers:        opts.Workers,
	}
	toRedis := opts.Direction == FileToRedis
	if !toRedis {
		if dst, err = keepDirLayout(ctx, opts, dst); err != nil {
			return err
		}
		mopts.CheckTarget = filestore.CheckShardID
		mopts.IgnoreTimestamps = opts.Layout == filestore.LayoutLegacy
	}
	if ts, ok := store.As[store.TTLSampler](dst); ok {
		warnTTLs(ctx, errOut, ts, opts.Redis)
	}

	start := now()
	plan, err := migrate.Build(ctx, src, dst, mopts)
	if err != nil {
		return err
	}
	for _, p := range plan.SourceProblems {
		fmt.Fprintf(errOut, "promstore: warning: source: %v (not migrated)\n", p)
	}
	if len(plan.Shards) == 0 && len(plan.SourceProblems) == 0 {
		if err := checkShards(ctx, errOut, src, false); err != nil {
			return err
		}
	}
	for _, p := range plan.TargetProblems {
		fmt.Fprintf(errOut, "promstore: warning: target: %v\n", p)
	}
	if mopts.IgnoreTimestamps {
		warnLegacyTimestamps(errOut, plan)
	}
	warnRunningConflicts(errOut, plan, runningConflicts(plan, opts))
	var running error
	if !toRedis {
		running = runningTargets(plan, dst, opts)
	}
	if opts.DryRun {
		printPlan(opts.IO.Out, plan, src, dst)
		if running != nil {
			return fmt.Errorf("dry run: the real run would fail: %w", running)
		}
		if err := checkTargetWrite(ctx, plan, dst); err != nil {
			return fmt.Errorf("dry run: the real run would fail: %w", err)
		}
		if plan.Conflicts > 0 && plan.Policy == migrate.Fail {
			return errSilent
		}
		return nil
	}
	if running != nil {
		return running
	}
	if plan.Conflicts > 0 && plan.Policy == migrate.Fail {
		fmt.Fprintf(errOut, "promstore: %d conflicting samples: the target already holds them with other values; nothing written\n", plan.Conflicts)
		printConflicts(errOut, plan, 20)
		fmt.Fprintln(errOut, "promstore: choose --on-conflict skip, overwrite or sum (with --journal), or see them all with --dry-run")
		return errSilent
	}

	bar := newProgressBar(opts.IO, opts.ProgressInterval)
	mopts.Progress = func(p migrate.Progress) {
		bar.update(p)
		if opts.AfterShard != nil {
			opts.AfterShard(p)
		}
	}
	prog, err := migrate.Execute(ctx, plan, dst, mopts)
	bar.done()
	if err != nil {
		printStopReport(ctx, errOut, plan, dst, prog, err)
		return err
	}
	elapsed := now().Sub(start)

	report, err := migrate.Verify(ctx, plan, dst)
	if err != nil {
		return err
	}
	summary := migrateSummary(plan, elapsed)
	if !report.OK() {
		fmt.Fprintf(opts.IO.Out, "%s; VERIFICATION FAILED\n", summary)
		fmt.Fprintf(errOut, "promstore: %s\n", report.Summary())
		return errSilent
	}
	verified := "verified"
	if len(report.Problems) > 0 {
		verified = fmt.Sprintf("verified (%d unreadable target keys outside the plan's samples, see warnings)", len(report.Problems))
	}
	if plan.Done() {
		fmt.Fprintf(opts.IO.Out, "nothing to do: the target already holds all %d samples of %d shards; %s\n", plan.Samples, len(plan.Shards), verified)
	} else {
		fmt.Fprintf(opts.IO.Out, "%s; %s\n", summary, verified)
		if !toRedis {
			// Which clients can read the directory now.
			readers := map[int]string{
				filestore.LayoutTimestamp: "16-byte layout, which prometheus_client 0.18 and newer read (--layout legacy for older ones)",
				filestore.LayoutLegacy:    "8-byte layout, which only prometheus_client before 0.18 reads",
			}[opts.Layout]
			if readers != "" {
				fmt.Fprintf(opts.IO.Out, "shards written in the %s\n", readers)
			}
		}
	}
	if opts.DeleteSource && len(plan.SourceProblems) > 0 {
		fmt.Fprintf(errOut, "promstore: not deleting the source: %d of its shards or keys could not be read\n", len(plan.SourceProblems))
	} else if opts.DeleteSource {
		var alive func(string) store.Liveness
		if toRedis {
			// The source directory is this host's: its running workers
			// write into the files they have mapped.
			alive = opts.alive()
		}
		n, kept, err := migrate.DeleteSource(ctx, plan, src, alive)
		warnKeptRunning(errOut, kept)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "deleted %d source shards from %s\n", n, src.Describe())
	}
	if len(plan.SourceProblems) > 0 {
		return fmt.Errorf("%d source shards or keys could not be read and were not migrated (see warnings)", len(plan.SourceProblems))
	}
	return nil
}

// writeChecker is a target that can tell, without changing anything,
// whether this client may write given shards' keys (Redis: an ACL user
// without write permission, a read-only replica).
type writeChecker interface {
	CheckWrite(ctx context.Context, auxNames []string, ids []store.ShardID, more []string) error
}

// checkTargetWrite tells a dry run whether the real run could write the
// shards its plan writes, as cleanup's dry run does: nil when it could,
// when nothing is to be written or when the target cannot tell.
func checkTargetWrite(ctx context.Context, plan *migrate.Plan, dst store.Store) error {
	wc, ok := store.As[writeChecker](dst)
	if !ok {
		return nil
	}
	var ids []store.ShardID
	for _, sp := range plan.Shards {
		if sp.Writes > 0 {
			ids = append(ids, sp.Target)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := wc.CheckWrite(ctx, nil, ids, nil); err != nil {
		return fmt.Errorf("this client cannot write the target: %w", err)
	}
	return nil
}
