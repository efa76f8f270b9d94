package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/tui"
)

// TopOptions are the inputs of `promstore top`.
type TopOptions struct {
	IO    *IOStreams
	Store func(context.Context) (store.Store, error)
	// Interval is the time between the end of one read and the next.
	Interval time.Duration
	// Once prints one snapshot and exits, as top does when Out is not a
	// terminal.
	Once bool
	// PythonClient is the prometheus_client release whose spelling of
	// floats (le labels, printed values) top follows.
	PythonClient pyclient.Version
}

// NewCmdTop builds `promstore top`. runF replaces topRun in tests.
func NewCmdTop(f *Factory, runF func(context.Context, *TopOptions) error) *cobra.Command {
	opts := &TopOptions{IO: f.IO}
	var sf StoreFlags
	var pc pythonClientFlag
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch a store live: aggregated series, rates, per-process values and histogram quantiles",
		Long: `Show the store's aggregated series on a live screen, re-read every --interval:
values, the rate per second of counters and of histogram and summary _count and
_sum, and a sparkline of recent values. The header names the store, its shards,
its processes (alive or dead, for a directory on this host), the samples read,
and when and how fast the last read was. A read that fails shows in the status
line while the last good data stays on screen.

Keys (? shows them all): n/v/r sort by name/value/rate, / filters by a regular
expression over family and labels, t switches the sparkline between values and
rates, p pauses, enter shows what each process contributes to the selected
series, h shows a histogram's buckets with estimated p50/p90/p99, w lists the
shards the last read skipped and why, esc goes back, q quits.

When standard output is not a terminal, or with --once, top prints one snapshot
as a table and exits.`,
		Example: `  promstore top --dir /var/run/prometheus
  promstore top --redis-url redis://localhost:6379 --interval 5s
  promstore top --dir ./store --once | grep http_requests`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return UsageErrorf("--interval must be positive, not %s", opts.Interval)
			}
			v, err := pc.version()
			if err != nil {
				return err
			}
			opts.PythonClient = v
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return topRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	pc.register(cmd)
	cmd.Flags().DurationVarP(&opts.Interval, "interval", "n", tui.DefaultInterval, "time between reads")
	cmd.Flags().BoolVar(&opts.Once, "once", false, "print one snapshot table and exit, even on a terminal")
	return cmd
}

func topRun(ctx context.Context, opts *TopOptions) error {
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	srcOpts := tui.SourceOptions{Alive: livenessProbe(st), PythonClient: opts.PythonClient}

	if opts.Once || !opts.IO.OutTTY {
		// One read, without the per-process breakdowns only the
		// interactive view shows, printed row by row.
		tab, err := tui.ReadTable(ctx, st, srcOpts)
		if err != nil {
			return err
		}
		for _, p := range tab.Snapshot.Problems {
			fmt.Fprintf(opts.IO.ErrOut, "promstore: warning: %s\n", p)
		}
		if tab.Snapshot.Shards == 0 {
			_ = checkShards(ctx, opts.IO.ErrOut, st, false)
		}
		return tab.Print(opts.IO.Out)
	}
	src := tui.NewStoreSource(st, srcOpts)

	// Every refresh reads the store again: shards of processes that are
	// gone are kept between reads (see filestore.Store.KeepReads).
	store.KeepReads(st, true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := tui.New(src, tui.WithInterval(opts.Interval), tui.WithContext(ctx))
	p := tea.NewProgram(m,
		tea.WithContext(ctx),
		tea.WithAltScreen(),
		tea.WithInput(opts.IO.In),
		tea.WithOutput(opts.IO.Out),
		// SIGINT, SIGTERM and SIGHUP cancel ctx (the root command's
		// signal.NotifyContext), which ends the program. Bubble Tea's own
		// handler, receiving them too, could block on a message nothing
		// reads any more while the program shut down: a hang in raw mode
		// (charmbracelet/bubbletea#1806).
		tea.WithoutSignalHandler(),
	)
	if _, err := p.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, tea.ErrInterrupted) {
			return context.Canceled
		}
		return fmt.Errorf("top: %w", err)
	}
	return nil
}

// livenessProbe returns how to tell whether a store's pids run: only the
// pids of a directory store are processes of this host.
func livenessProbe(st store.Store) func(string) store.Liveness {
	if _, local := store.As[store.Local](st); local {
		return store.ProcessAlive
	}
	return nil
}
