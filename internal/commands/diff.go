package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/compare"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
)

// DiffOptions are the inputs of `promstore diff`.
type DiffOptions struct {
	IO *IOStreams
	// A and B are the sources as given: a directory, a Redis URL, an
	// exposition file, or "-" for an exposition on stdin.
	A, B string
	// Load reads one source into its aggregated output.
	Load    func(ctx context.Context, arg string) (*compare.Exposition, error)
	Compare compare.Options
	Format  string
	// MaxLines bounds the series listed per family in text output; 0 lists
	// every one.
	MaxLines int
}

var diffFormats = []string{"text", "json"}

// NewCmdDiff builds `promstore diff`. runF replaces diffRun in tests.
func NewCmdDiff(f *Factory, runF func(context.Context, *DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{IO: f.IO}
	var rf RedisFlags
	var pc pythonClientFlag
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare the aggregated output of two stores or saved expositions",
		Long: `Compare what two sources expose, semantically: families, types, help, series
(sample name and label strings, exactly) and values. A and B are each a
multiprocess directory, a Redis URL (redis://, rediss:// or unix://, the exporter's
layout under --redis-prefix), or a saved exposition file in Prometheus text or
OpenMetrics format (e.g. saved with curl; "-" reads one from stdin). Stores are
aggregated as dump does; text files are parsed with expfmt, OpenMetrics files
(ending in "# EOF") by promstore's own reader, which also takes the negative
and NaN sums Python writes; le and quantile labels keep the spelling the file
gives them (le="1.0" and le="1" are different
series for Prometheus, and differ here too). Stores spell le as the newest
prometheus_client does (le="1e+10"); give --python-client 0.25 (or older) to
compare with an exposition of such a client (le="1e+010").

Values are equal when they are the same, both NaN, or within --tolerance
(relative) or --abs-tolerance. The report is grouped by family: "-" series only
in A, "+" only in B, "~" changed values.

--counters reports only the counter, histogram and summary series that are
lower in B than in A (what Prometheus would take for a counter reset) or NaN
in B where A has a number (rate() is NaN from then on).

Exit status: 0 equal (no series went backwards with --counters), 1 different,
2 usage or trouble (a bad flag, a source that does not exist or cannot be
read: Redis down, a file that is no exposition), so that 1 always means
different.`,
		Example: `  promstore dump --dir /var/run/prom > before.prom
  promstore cleanup --dir /var/run/prom --dead-pids
  promstore diff --counters before.prom /var/run/prom # exit 0: no counter went backwards
  promstore diff before.prom /var/run/prom            # only live* gauges of dead pids differ
  promstore diff --tolerance 1e-12 /var/run/prom redis://redis:6379/0
                   # after migrate file-to-redis: Redis merges in another order
                   # (equal but for a min/max gauge NaN in some process: the first value met wins)
  curl -s localhost:8000/metrics | promstore diff --counters - ./store`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChoice("--format", opts.Format, diffFormats); err != nil {
				return err
			}
			if opts.Compare.Tolerance < 0 || opts.Compare.AbsTolerance < 0 {
				return UsageErrorf("--tolerance and --abs-tolerance must not be negative")
			}
			if opts.MaxLines < 0 {
				return UsageErrorf("--max-lines must not be negative (0 lists all)")
			}
			if len(rf.URLs) > 0 {
				return UsageErrorf("give Redis stores as arguments (diff redis://host:6379/0 ./dir), not with --redis-url")
			}
			if args[0] == "-" && args[1] == "-" {
				return UsageErrorf("only one of A and B can be stdin")
			}
			client, err := pc.version()
			if err != nil {
				return err
			}
			opts.A, opts.B = args[0], args[1]
			opts.Load = func(ctx context.Context, arg string) (*compare.Exposition, error) {
				return loadSource(ctx, f, &rf, client, arg)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return diffRun(cmd.Context(), opts)
		},
	}
	rf.Register(cmd)
	pc.register(cmd)
	_ = cmd.Flags().MarkHidden("redis-url")
	cmd.Flags().Float64Var(&opts.Compare.Tolerance, "tolerance", 0, "relative difference under which two values are equal, e.g. 1e-9")
	cmd.Flags().Float64Var(&opts.Compare.AbsTolerance, "abs-tolerance", 0, "absolute difference under which two values are equal")
	cmd.Flags().BoolVar(&opts.Compare.Counters, "counters", false, "report only counter, histogram and summary series that went backwards (or became NaN) from A to B")
	cmd.Flags().StringVarP(&opts.Format, "format", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&opts.MaxLines, "max-lines", 20, "series listed per family and kind of difference in text output (0: all)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(diffFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func diffRun(ctx context.Context, opts *DiffOptions) error {
	a, err := opts.Load(ctx, opts.A)
	if err != nil {
		return loadTrouble("A", err)
	}
	b, err := opts.Load(ctx, opts.B)
	if err != nil {
		return loadTrouble("B", err)
	}
	r := compare.Diff(a, b, opts.Compare)
	if opts.Format == "json" {
		err = r.WriteJSON(opts.IO.Out)
	} else {
		err = r.WriteText(opts.IO.Out, opts.MaxLines)
	}
	if err != nil {
		return &troubleError{fmt.Errorf("write output: %w", err)}
	}
	if !r.Equal() {
		return errSilent
	}
	return nil
}

// loadTrouble is the error of a source that could not be loaded: exit 2
// (a usage error keeps its hint), so that 1 always means "different".
func loadTrouble(which string, err error) error {
	err = fmt.Errorf("%s: %w", which, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	return &troubleError{err}
}

// loadSource reads one diff argument: "-" (an exposition on stdin), a
// redis://, rediss:// or unix:// URL, a directory, or an exposition file. Stores
// are aggregated with the le spelling of release client.
func loadSource(ctx context.Context, f *Factory, rf *RedisFlags, client pyclient.Version, arg string) (*compare.Exposition, error) {
	if arg == "-" {
		return parseExposition("stdin", f.IO.In)
	}
	var loc store.Location
	if strings.HasPrefix(arg, "redis://") || strings.HasPrefix(arg, "rediss://") || strings.HasPrefix(arg, "unix://") {
		cfg, err := rf.Resolve(f)
		if err != nil {
			return nil, err
		}
		cfg.URLs = []string{arg}
		loc.Redis = cfg
	} else {
		fi, err := os.Stat(arg)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, UsageErrorf("%s: no such directory, file or Redis URL", arg)
		}
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			fh, err := os.Open(arg)
			if err != nil {
				return nil, err
			}
			defer fh.Close()
			return parseExposition(arg, fh)
		}
		loc.Dir = arg
	}
	f.prepareHeap()
	st, err := store.Open(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Exact while a cleanup runs, as every reading command is.
	st = cleanup.Consistent(st)
	defer st.Close()
	agg := aggregate.NewFor(client)
	if err := reportScan(f.IO, store.ScanShards(ctx, st, agg.AddShard), false); err != nil {
		return nil, err
	}
	fams := agg.Families()
	if len(fams) == 0 {
		_ = checkShards(ctx, f.IO.ErrOut, st, false)
	}
	return compare.FromFamilies(st.Describe(), fams), nil
}

func parseExposition(name string, r io.Reader) (*compare.Exposition, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return compare.Parse(name, data, compare.DetectFormat(data))
}
