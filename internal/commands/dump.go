package commands

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
)

// DumpOptions are the inputs of `promstore dump`.
type DumpOptions struct {
	IO     *IOStreams
	Store  func(context.Context) (store.Store, error)
	Format string
	Match  string
	Raw    bool
	Strict bool
	// PythonClient is the prometheus_client release whose spelling of
	// floats the output follows (values, le labels).
	PythonClient pyclient.Version
}

// dumpFormats lists the values --format accepts.
var dumpFormats = []string{"text", "openmetrics", "json"}

// NewCmdDump builds `promstore dump`. runF replaces dumpRun in tests.
func NewCmdDump(f *Factory, runF func(context.Context, *DumpOptions) error) *cobra.Command {
	opts := &DumpOptions{IO: f.IO}
	var sf StoreFlags
	var pc pythonClientFlag
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Print the aggregated exposition of a store, as Python's collector would serve it",
		Long: `Print what prometheus_client's MultiProcessCollector would serve for the store:
the same families, help, types, samples and label strings (le="1.0", not "1").
Values are merged in the order Python merges them (directory order for files),
so they equal Python's to the bit. Families are sorted by name and samples
series by series (a histogram's buckets by le, then _count and _sum), so two
dumps of an unchanged store are byte-identical.

Shards that cannot be read (corrupt, truncated, foreign files; orphan or
malformed Redis keys) are skipped with a warning naming them on stderr; the
rest of the store is still dumped. A store with no shards at all (an empty or
mistyped directory, a prefix with no keys) is warned about. --strict makes any
such problem exit 1.

Floats are spelled as the newest prometheus_client spells them (le="1e+10");
--python-client 0.25 (or older) spells them as that release did (le="1e+010"),
in every format, --raw's values included (--raw's labels are shown as
stored); with 0.17 or older, mostrecent gauges come out one sample per
process, as those releases serve a mode they do not know (JSON then gives
their mode as all).`,
		Example: `  promstore dump --dir /var/run/prometheus
  PROMETHEUS_MULTIPROC_DIR=/tmp/metrics promstore dump --format openmetrics
  promstore dump --dir ./store --match '^http_' --format json
  promstore dump --dir ./store --raw          # per-shard samples, before merging
  promstore dump --dir ./store --python-client 0.25   # as prometheus_client 0.25 spells floats`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChoice("--format", opts.Format, dumpFormats); err != nil {
				return err
			}
			if opts.Raw && opts.Format == "openmetrics" {
				return UsageErrorf("--raw prints per-shard samples as text or json, not openmetrics")
			}
			if _, err := regexp.Compile(opts.Match); err != nil {
				return UsageErrorf("--match: %v", err)
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
			return dumpRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	pc.register(cmd)
	cmd.Flags().StringVarP(&opts.Format, "format", "o", "text", "output format: text, openmetrics or json")
	cmd.Flags().StringVarP(&opts.Match, "match", "m", "", "only families whose name (or exposed name, e.g. with _total) matches this regular expression")
	cmd.Flags().BoolVar(&opts.Raw, "raw", false, "print per-shard samples before aggregation, with kind, mode and pid: with -o text a tab-separated table under a header line, with -o json one JSON object per line")
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "exit 1 when any shard or key cannot be read, the store holds no shards, or Prometheus would reject the output (names alike once escaped), instead of warning")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(dumpFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("match", completeFamilies(f, &sf))
	return cmd
}

func validateChoice(flag, v string, choices []string) error {
	for _, c := range choices {
		if v == c {
			return nil
		}
	}
	return UsageErrorf("%s must be one of %v, not %q", flag, choices, v)
}

// familyFilter returns a predicate over family names for --match; nil
// matches everything. It is not safe for concurrent use.
func familyFilter(match string) (func(k *store.Key, kind store.Kind) bool, error) {
	if match == "" {
		return nil, nil
	}
	re, err := regexp.Compile(match)
	if err != nil {
		return nil, err
	}
	// The answers by kind, then family: a sample costs two lookups, no
	// allocation.
	cache := map[store.Kind]map[string]bool{}
	return func(k *store.Key, kind store.Kind) bool {
		byFamily := cache[kind]
		if byFamily == nil {
			byFamily = map[string]bool{}
			cache[kind] = byFamily
		}
		ok, seen := byFamily[k.Family]
		if !seen {
			ok = re.MatchString(k.Family) || (kind == store.KindCounter && re.MatchString(k.Family+"_total"))
			byFamily[k.Family] = ok
		}
		return ok
	}, nil
}

func dumpRun(ctx context.Context, opts *DumpOptions) error {
	// A dump is one read of the store: let the heap grow further between
	// collections (about 25% faster on large stores; peak memory stays far
	// below the Python collector's).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	keep, err := familyFilter(opts.Match)
	if err != nil {
		return UsageErrorf("--match: %v", err)
	}
	if opts.Raw {
		// The rows stream out as the shards are read; with --strict they
		// are held until the read is known to be whole, so that a
		// problem leaves nothing on stdout, as for the other outputs.
		out := opts.IO.Out
		var held *bytes.Buffer
		if opts.Strict {
			held = &bytes.Buffer{}
			out = held
		}
		rw, err := render.NewRawFor(out, opts.Format, opts.PythonClient)
		if err != nil {
			return err
		}
		samples := 0 // written
		scanErr := st.Scan(ctx, filtered(keep, func(s store.Sample) error { samples++; return rw.Write(s) }))
		if err := rw.Close(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if scanErr == nil && samples == 0 {
			if err := checkEmptyOutput(ctx, opts, st); err != nil {
				return err
			}
		}
		if err := reportScan(opts.IO, scanErr, opts.Strict); err != nil || held == nil {
			return err
		}
		if _, err := held.WriteTo(opts.IO.Out); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	agg := aggregate.NewFor(opts.PythonClient)
	scanErr := store.ScanShards(ctx, st, filteredShards(keep, agg.AddShard))
	if err := reportScan(opts.IO, scanErr, opts.Strict); err != nil {
		return err
	}
	families := agg.Streamer()
	if scanErr == nil && families.Len() == 0 {
		if err := checkEmptyOutput(ctx, opts, st); err != nil {
			return err
		}
	}
	format := render.Format{
		Exposition: render.Exposition{
			OpenMetrics: opts.Format == "openmetrics",
			Escaping:    model.UnderscoreEscaping,
			Client:      opts.PythonClient,
		},
		JSON: opts.Format == "json",
	}
	// Where every name is written as it is, what Prometheus would reject
	// shows in the families' names alone, and the families are built and
	// written a part at a time (peak memory is then the read's); else
	// they are all built first.
	problems, plain := format.RejectedHeaders(families)
	var fams []aggregate.Family
	if !plain {
		fams = agg.Families()
		problems = format.Rejected(fams)
	}
	if len(problems) > 0 {
		// Written as Python writes them all the same; a Prometheus
		// server rejects such a scrape whole.
		word := "warning"
		if opts.Strict {
			word = "error"
		}
		for _, p := range problems {
			fmt.Fprintf(opts.IO.ErrOut, "promstore: %s: Prometheus would reject the output: %s\n", word, p)
		}
		if opts.Strict {
			return fmt.Errorf("%d problem(s) Prometheus would reject the output for, and --strict given", len(problems))
		}
	}
	if plain {
		collectLargeHeap()
		err = format.Stream(opts.IO.Out, families)
	} else {
		err = format.Write(opts.IO.Out, fams)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// checkEmptyOutput says why a dump that read st without an error prints
// no sample: st holds no shards (checkShards), or --match selected none
// of its families (a warning: a mistyped regex).
func checkEmptyOutput(ctx context.Context, opts *DumpOptions, st store.Store) error {
	if opts.Match == "" {
		return checkShards(ctx, opts.IO.ErrOut, st, opts.Strict)
	}
	infos, err := st.Shards(ctx)
	if err == nil && len(infos) == 0 {
		return reportNoShards(ctx, opts.IO.ErrOut, st, opts.Strict)
	}
	if err == nil && slices.ContainsFunc(infos, func(in store.ShardInfo) bool { return in.Samples > 0 }) {
		fmt.Fprintf(opts.IO.ErrOut, "promstore: warning: --match %q selects none of the families of %s\n", opts.Match, st.Describe())
	}
	return nil
}

// collectHeapAt is the heap size from which a dump collects its garbage
// between the read and the output.
const collectHeapAt = 64 << 20

// collectLargeHeap collects the garbage of a large heap: what a read made
// and no longer needs (its buffers, the tables it grew past), so that the
// output's memory comes from it and the read's peak stays the dump's (big
// store: peak RSS 162 -> 155 MiB, for one collection of the heap the
// aggregated families keep). A small heap is left as it is: its
// collection would cost more than the little memory it gives back.
func collectLargeHeap() {
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindUint64 && m[0].Value.Uint64() >= collectHeapAt {
		runtime.GC()
	}
}

func filtered(keep func(*store.Key, store.Kind) bool, fn store.ScanFunc) store.ScanFunc {
	if keep == nil {
		return fn
	}
	return func(s store.Sample) error {
		if !keep(s.Key, s.Shard.Kind) {
			return nil
		}
		return fn(s)
	}
}

// filteredShards is fn given only the entries keep accepts (all when keep
// is nil); a shard none of whose entries it accepts is not handed over.
// keep is asked once per key and kind: its answers are kept by key ID.
func filteredShards(keep func(*store.Key, store.Kind) bool, fn store.ShardFunc) store.ShardFunc {
	if keep == nil {
		return fn
	}
	var kept []store.Entry
	answers := map[store.Kind]*store.KeyTable[bool]{}
	return func(id store.ShardID, entries []store.Entry) error {
		ans := answers[id.Kind]
		if ans == nil {
			ans = &store.KeyTable[bool]{}
			answers[id.Kind] = ans
		}
		kept = kept[:0]
		for _, e := range entries {
			ok, known := ans.Get(e.KeyID, e.Key)
			if !known {
				ok = keep(e.Key, id.Kind)
				ans.Put(e.KeyID, e.Key, ok)
			}
			if ok {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		err := fn(id, kept)
		clear(kept) // no key held past the call
		return err
	}
}

// maxProblemLines is how many shard problems a command prints before it
// counts the rest.
const maxProblemLines = 20

// reportScan turns a scan's outcome into warnings or an error: shard
// problems are warnings on ErrOut (errors with strict), the first
// maxProblemLines of them and a count of the rest; anything else is
// returned as is.
func reportScan(io *IOStreams, err error, strict bool) error {
	if err == nil {
		return nil
	}
	problems, partial := store.Partial(err)
	if !partial {
		return err
	}
	word := "warning"
	if strict {
		word = "error"
	}
	for i, p := range problems {
		if i == maxProblemLines && len(problems) > maxProblemLines+1 {
			// A store of thousands of bad keys or files (a nested
			// prefix, a pile of truncated shards) would bury the output.
			fmt.Fprintf(io.ErrOut, "promstore: %s: and %d more problems (promstore fsck lists every one)\n", word, len(problems)-i)
			break
		}
		fmt.Fprintf(io.ErrOut, "promstore: %s: %v\n", word, p)
	}
	if strict {
		return fmt.Errorf("%d shard problem(s) found and --strict given", len(problems))
	}
	return nil
}
