package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/analyze"
	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
)

// AnalyzeOptions are the inputs of `promstore analyze`.
type AnalyzeOptions struct {
	IO     *IOStreams
	Store  func(context.Context) (store.Store, error)
	Top    int
	Format string
	// Local says the pids of a Redis store are processes of this host.
	Local bool
	Now   func() time.Time
	Alive func(pid string) store.Liveness
}

var analyzeFormats = []string{"table", "json"}

// NewCmdAnalyze builds `promstore analyze`. runF replaces analyzeRun in tests.
func NewCmdAnalyze(f *Factory, runF func(context.Context, *AnalyzeOptions) error) *cobra.Command {
	opts := &AnalyzeOptions{IO: f.IO, Now: f.Now, Alive: store.ProcessAlive}
	var sf StoreFlags
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Explain a store: cardinality per family and label, all-mode gauges, live and dead shares, bytes, cleanup savings, growth",
		Long: `Explain what a store holds, as promtool tsdb analyze does for a TSDB:

- series (output lines) and samples (entries over all shards) per family,
  the top --top by series, with the bytes each takes: used (entries), allocated
  (disk blocks: shards are sparse files) and on disk (apparent size), a shard's
  bytes shared out to its families by the size of their entries;
- label names by distinct values, and the families they blow up;
- gauges of mode all and liveall, whose pid label makes one series per process;
- the share of live, dead and unknown pids in shards, samples, series, bytes;
- what cleanup --dead-pids would do and free (an estimate from the distinct
  keys the archives would get);
- how fast the store grew, from the shards' mtimes.

The store is read once, as dump reads it, without aggregating values.`,
		Example: `  promstore analyze --dir /var/run/prometheus
  promstore analyze --dir ./store --top 20 -o json
  promstore analyze --redis-url redis://localhost:6379/0 --local`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChoice("--format", opts.Format, analyzeFormats); err != nil {
				return err
			}
			if opts.Top < 0 {
				return UsageErrorf("--top must not be negative")
			}
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return analyzeRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	cmd.Flags().IntVar(&opts.Top, "top", 10, "families and labels listed (0: all)")
	cmd.Flags().StringVarP(&opts.Format, "format", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&opts.Local, "local", false, "every writer of the Redis store runs on this host, so pids can be checked")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(analyzeFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func analyzeRun(ctx context.Context, opts *AnalyzeOptions) error {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	o := analyze.Options{Top: opts.Top, Now: opts.Now(), MinIdle: cleanup.DefaultMinIdle}
	var infos []store.ShardInfo
	if sf, ok := store.As[store.Stater](st); ok {
		// A stat and a header read per file: the entries come from the
		// one scan.
		infos, err = sf.Stat(ctx)
		o.Layouts = true
	} else {
		infos, err = st.Shards(ctx)
	}
	if _, local := store.As[store.Local](st); local || opts.Local {
		o.Alive = opts.Alive
	}
	// Keys the listing found in no shard (a name that is not UTF-8, an
	// unknown kind) are problems of the scan too: reported with the rest.
	if _, partial := store.Partial(err); err != nil && !partial {
		return err
	}
	if len(infos) == 0 {
		_ = reportNoShards(ctx, opts.IO.ErrOut, st, false)
	}
	r, err := analyze.Run(ctx, st, infos, o)
	if err != nil {
		return err
	}
	for _, p := range r.Problems {
		fmt.Fprintf(opts.IO.ErrOut, "promstore: warning: %s\n", p)
	}
	if opts.Format == "json" {
		err = json.NewEncoder(opts.IO.Out).Encode(r)
	} else {
		err = writeAnalyzeTable(opts.IO.Out, r, opts.Top)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// humanBytes spells a byte count in binary units.
func humanBytes(n int64) string {
	f := float64(n)
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%s%d B", sign, int64(f))
			}
			return fmt.Sprintf("%s%.1f %s", sign, f, u)
		}
		f /= 1024
	}
	return ""
}

func pct(part, whole int) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}

// writeAnalyzeTable writes r as tables; a label's families are cut
// after the first three unless top is 0 (everything asked for).
func writeAnalyzeTable(w io.Writer, r *analyze.Report, top int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("%s: %d shards (%d unreadable), %d samples, %d series in %d families\n", r.Store, r.Shards, r.Unreadable, r.Samples, r.Series, r.FamiliesTotal)
	p("bytes: used %s, allocated %s, on disk %s\n\n", humanBytes(r.Used), humanBytes(r.Allocated), humanBytes(r.OnDisk))
	p("FAMILY\tTYPE\tSERIES\tSAMPLES\tUSED\tALLOCATED\tON DISK\n")
	for _, f := range r.Families {
		typ := f.Type
		if f.Mode != "" {
			typ += " (" + f.Mode + ")"
		}
		p("%s\t%s\t%d\t%d\t%s\t%s\t%s\n", f.Name, typ, f.Series, f.Samples, humanBytes(f.Used), humanBytes(f.Allocated), humanBytes(f.OnDisk))
	}
	p("\nLABEL\tVALUES\tFAMILIES (values, series)\n")
	for _, l := range r.Labels {
		var fs []string
		for i, f := range l.Families {
			if i == 3 && top != 0 {
				fs = append(fs, fmt.Sprintf("and %d more", len(l.Families)-3))
				break
			}
			fs = append(fs, fmt.Sprintf("%s (%d, %d)", f.Family, f.Values, f.Series))
		}
		p("%s\t%d\t%s\n", l.Name, l.Values, strings.Join(fs, ", "))
	}
	if len(r.AllGauges) > 0 {
		p("\nALL-MODE GAUGE\tMODE\tPIDS\tDEAD PIDS\tSERIES\tOF DEAD PIDS\tMAX PER PID\n")
		for _, g := range r.AllGauges {
			p("%s\t%s\t%d\t%d\t%d\t%d\t%d\n", g.Family, g.Mode, g.PIDs, g.DeadPIDs, g.Series, g.DeadSeries, g.PerPID)
		}
	}
	p("\nPIDS\tSHARDS\tSAMPLES\tSERIES\tUSED\tALLOCATED\tON DISK\n")
	for _, s := range []struct {
		name string
		sh   analyze.Share
	}{{"live", r.Live}, {"dead", r.Dead}, {"unknown", r.Unknown}} {
		p("%s\t%d (%s)\t%d (%s)\t%d\t%s\t%s\t%s\n", s.name, s.sh.Shards, pct(s.sh.Shards, r.Shards), s.sh.Samples, pct(s.sh.Samples, r.Samples),
			s.sh.Series, humanBytes(s.sh.Used), humanBytes(s.sh.Allocated), humanBytes(s.sh.OnDisk))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := r.Cleanup
	fmt.Fprintln(w)
	what := "cleanup --dead-pids would"
	if c.Refused != "" {
		fmt.Fprintf(w, "cleanup --dead-pids would refuse: %s\n", c.Refused)
		what = "if it did not refuse, it would"
	}
	if c.Refused == "" || c.Removed+c.Compacted > 0 {
		fmt.Fprintf(w, "%s remove %d live* gauge shards, compact %d shards into %d archives, keep %d all-mode gauge shards: about %s allocated, %s on disk freed\n",
			what, c.Removed, c.Compacted, c.Archives, c.Kept, humanBytes(c.Freed.Allocated), humanBytes(c.Freed.OnDisk))
	}
	g := r.Growth
	if g.ShardsPerDay > 0 {
		fmt.Fprintf(w, "growth: %.1f shards, %s allocated, %s on disk per day (%s)\n", g.ShardsPerDay, humanBytes(int64(g.AllocatedPerDay)), humanBytes(int64(g.OnDiskPerDay)), g.Note)
	} else {
		fmt.Fprintf(w, "growth: %s\n", g.Note)
	}
	return nil
}
