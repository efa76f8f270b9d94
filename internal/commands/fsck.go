package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/fsck"
	"github.com/promstore/promstore/internal/store"
)

// FsckOptions are the inputs of `promstore fsck`.
type FsckOptions struct {
	IO *IOStreams
	// Dir is the multiprocess directory; empty for a Redis store.
	Dir        string
	Store      func(context.Context) (store.Store, error)
	Repair     bool
	DryRun     bool
	Quarantine string
	Format     string
	Alive      func(pid string) store.Liveness
}

var fsckFormats = []string{"text", "json"}

// NewCmdFsck builds `promstore fsck`. runF replaces fsckRun in tests.
func NewCmdFsck(f *Factory, runF func(context.Context, *FsckOptions) error) *cobra.Command {
	opts := &FsckOptions{IO: f.IO, Alive: store.ProcessAlive}
	var sf StoreFlags
	cmd := &cobra.Command{
		Use:   "fsck",
		Short: "Check every shard of a store and repair a directory so Python's collector reads it again",
		Long: `Check every shard (file or Redis shard) and say what is wrong with each:
empty, truncated and corrupt files (with how many entries can still be read),
entries past the used size, keys twice in one shard, samples that do not fit
their shard's kind (a histogram sample in a counter shard), families whose
type, gauge mode or help differ between shards, histogram buckets that differ
between processes, *.db files that are not shards, and shards that several live
processes map (a pid collision across containers; seen in /proc).

--repair (directories) makes Python's own collector work again: a corrupt or
truncated shard is rewritten with every entry that can still be read (a
temporary file, fsync, rename) after its original is copied to the quarantine
directory; empty, foreign and unsalvageable files are moved there. Nothing is
deleted. Shards of running processes are not touched. The repair holds the
cleanup lock and, stopped at any step, leaves a readable store; run it again to
finish. --dry-run shows the plan.

Exit status: 0 no problem, 1 problems found (also when --repair fixed them).`,
		Example: `  promstore fsck --dir /var/run/prometheus
  promstore fsck --dir ./store -o json | jq '.problems[] | .shard'
  promstore fsck --dir ./store --repair --dry-run
  promstore fsck --dir ./store --repair --quarantine /var/tmp/prom-quarantine
  promstore fsck --redis-url redis://localhost:6379/0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChoice("--format", opts.Format, fsckFormats); err != nil {
				return err
			}
			if opts.DryRun && !opts.Repair {
				return UsageErrorf("--dry-run goes with --repair")
			}
			if opts.Quarantine != "" && !opts.Repair {
				return UsageErrorf("--quarantine goes with --repair")
			}
			loc, err := sf.Location(f)
			if err != nil {
				return err
			}
			if loc.Dir == "" && opts.Repair {
				return UsageErrorf("--repair works on directories; for a Redis store, promstore cleanup --orphans removes orphan keys")
			}
			opts.Dir = loc.Dir
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return fsckRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	cmd.Flags().BoolVar(&opts.Repair, "repair", false, "rewrite corrupt shards with their readable entries and move empty and foreign files to the quarantine directory")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "with --repair: print what would be done, change nothing")
	cmd.Flags().StringVar(&opts.Quarantine, "quarantine", "", "where --repair puts originals (default DIR/"+fsck.QuarantineName+")")
	cmd.Flags().StringVarP(&opts.Format, "format", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(fsckFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("quarantine")
	return cmd
}

func fsckRun(ctx context.Context, opts *FsckOptions) error {
	var r *fsck.Report
	var err error
	switch {
	case opts.Repair:
		r, err = fsck.Repair(ctx, opts.Dir, fsck.RepairOptions{Quarantine: opts.Quarantine, DryRun: opts.DryRun, Alive: opts.Alive})
	case opts.Dir != "":
		if r, err = fsck.CheckDir(ctx, opts.Dir); err == nil {
			r.HoldRunning(opts.Alive)
		}
	default:
		var st store.Store
		if st, err = opts.Store(ctx); err != nil {
			return err
		}
		defer st.Close()
		r, err = fsck.CheckStore(ctx, st)
	}
	if r != nil {
		if werr := writeFsck(opts, r); werr != nil {
			return werr
		}
		if r.Shards == 0 && len(r.Problems) == 0 {
			warnIfNoShards(ctx, opts)
		}
	}
	if err != nil {
		return err
	}
	if !r.Clean() {
		return errSilent
	}
	return nil
}

// warnIfNoShards warns that the store fsck found nothing in holds no
// shards at all (a mistyped path or prefix), as every command does.
func warnIfNoShards(ctx context.Context, opts *FsckOptions) {
	st, err := opts.Store(ctx)
	if err != nil {
		return
	}
	defer st.Close()
	_ = checkShards(ctx, opts.IO.ErrOut, st, false)
}

func writeFsck(opts *FsckOptions, r *fsck.Report) error {
	if opts.Format == "json" {
		if r.Problems == nil {
			r.Problems = []fsck.Problem{}
		}
		if err := json.NewEncoder(opts.IO.Out).Encode(r); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	if len(r.Problems) > 0 {
		fmt.Fprintln(tw, "SHARD\tPROBLEM\tREPAIR\tDETAIL")
	}
	// A repair that stopped part-way (an error follows the report) has
	// done only some of what it planned: count and show what it did.
	repaired := opts.Repair && !r.DryRun
	var rewrite, quarantine, remove, notDone int
	for _, p := range r.Problems {
		action := "-"
		switch {
		case p.Done && p.Repair == fsck.RepairRewrite:
			action = fmt.Sprintf("rewritten, %d entries kept; original in %s", p.Salvaged, p.Quarantined)
		case p.Done && p.Repair == fsck.RepairRemove:
			action = "removed"
		case p.Done:
			action = "moved to " + p.Quarantined
		case p.Repair == fsck.RepairRewrite:
			action = fmt.Sprintf("rewrite (%d entries)", p.Salvaged)
		case p.Repair != "":
			action = p.Repair
		}
		if repaired && !p.Done && p.Repair != "" {
			action = "not done: " + action
			notDone++
		} else {
			switch p.Repair {
			case fsck.RepairRewrite:
				rewrite++
			case fsck.RepairQuarantine:
				quarantine++
			case fsck.RepairRemove:
				remove++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", store.NameText(p.Shard), p.Kind, tableCell(action), tableCell(p.Detail))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	w := opts.IO.Out
	barrier := ""
	if remove > 0 {
		barrier = ", and remove the cleanup barrier"
		if repaired {
			barrier = ", removed the cleanup barrier"
		}
	}
	switch {
	case r.Clean():
		fmt.Fprintf(w, "%s: no problems in %d shards (%d samples)\n", r.Store, r.Shards, r.Samples)
	case opts.Repair && r.DryRun:
		fmt.Fprintf(w, "%s: %d problem(s) in %d shards; --repair would rewrite %d shard(s) and move %d file(s) to %s%s (dry run: nothing changed)\n",
			r.Store, len(r.Problems), r.Shards, rewrite, quarantine, r.Quarantine, barrier)
	case opts.Repair:
		stopped := ""
		if notDone > 0 {
			stopped = fmt.Sprintf("; the repair stopped: %d repair(s) not done (see the error below; run it again once that is mended)", notDone)
		}
		fmt.Fprintf(w, "%s: %d problem(s) in %d shards; rewrote %d shard(s), moved %d file(s) to %s%s%s\n",
			r.Store, len(r.Problems), r.Shards, rewrite, quarantine, r.Quarantine, barrier, stopped)
	default:
		fmt.Fprintf(w, "%s: %d problem(s) in %d shards (%d samples readable); --repair fixes %d of them\n",
			r.Store, len(r.Problems), r.Shards, r.Samples, rewrite+quarantine+remove)
	}
	return nil
}
