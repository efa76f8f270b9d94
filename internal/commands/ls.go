package commands

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/cleanup"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// LsOptions are the inputs of `promstore ls`.
type LsOptions struct {
	IO    *IOStreams
	Store func(context.Context) (store.Store, error)
	// Format is table, json or tsv; empty means table on a terminal, tsv
	// otherwise.
	Format string
	Sort   string
	// Local says the pids of a Redis store are processes of this host.
	Local bool
	Now   func() time.Time
	Alive func(pid string) store.Liveness
}

var (
	lsFormats = []string{"table", "json", "tsv"}
	lsSorts   = []string{"name", "pid", "kind", "samples", "bytes", "updated"}
)

// NewCmdLs builds `promstore ls`. runF replaces lsRun in tests.
func NewCmdLs(f *Factory, runF func(context.Context, *LsOptions) error) *cobra.Command {
	opts := &LsOptions{IO: f.IO, Now: f.Now, Alive: store.ProcessAlive}
	var sf StoreFlags
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the shards of a store: kind, mode, pid, liveness, size and problems",
		Long: `List one row per shard (one process's samples of one kind): kind, gauge mode,
pid, whether that pid runs (yes/no/unknown), samples, bytes, the value layout of
a file (8 bytes before prometheus_client 0.18, 16 since), the last update (file
mtime; Redis updated_at) and problems (corrupt files, orphan or modeless Redis
keys). A totals line follows the table.

Liveness is a kill(pid, 0) check on this host: "unknown" for pids that are not
numbers, and for Redis stores unless --local says every writer runs here.
Archive shards (pid "archive-<n>", what 'promstore cleanup' compacted dead
processes into) show "archive" there and are counted apart from the pids.`,
		Example: `  promstore ls --dir /var/run/prometheus
  promstore ls --sort updated --format json
  promstore ls --redis-url redis://localhost:6379/0 --local`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Format != "" {
				if err := validateChoice("--format", opts.Format, lsFormats); err != nil {
					return err
				}
			}
			if err := validateChoice("--sort", opts.Sort, lsSorts); err != nil {
				return err
			}
			opts.Store = func(ctx context.Context) (store.Store, error) { return sf.Open(ctx, f) }
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return lsRun(cmd.Context(), opts)
		},
	}
	sf.Register(cmd)
	cmd.Flags().StringVarP(&opts.Format, "format", "o", "", "output format: table, json or tsv (default table on a terminal, tsv otherwise)")
	cmd.Flags().StringVarP(&opts.Sort, "sort", "s", "name", "sort rows by name, pid or kind (ascending), samples or bytes (largest first), or updated (newest first)")
	cmd.Flags().BoolVar(&opts.Local, "local", false, "every writer of the Redis store runs on this host, so pids can be checked")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(lsFormats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("sort", cobra.FixedCompletions(lsSorts, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// lsRow is one shard as ls shows it.
type lsRow struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Mode    string `json:"mode"`
	PID     string `json:"pid"`
	Alive   string `json:"alive"`
	Samples int    `json:"samples"`
	Bytes   int64  `json:"bytes"`
	// Allocated is the disk space (st_blocks), less than Bytes when the
	// file is sparse; Used the file's used size. A Redis shard has one
	// size, its keys' MEMORY USAGE, for all three.
	Allocated int64     `json:"allocated"`
	Used      int64     `json:"used"`
	Layout    int       `json:"layout,omitempty"`
	Updated   time.Time `json:"updated,omitzero"` // in UTC; none when unknown (a shard that cannot be opened)
	Location  string    `json:"location"`
	Problems  []string  `json:"problems"`
}

// lsTotals sums the rows.
type lsTotals struct {
	Shards  int   `json:"shards"`
	PIDs    int   `json:"pids"`
	Alive   int   `json:"pids_alive"`
	Dead    int   `json:"pids_dead"`
	Unknown int   `json:"pids_unknown"`
	Samples int   `json:"samples"`
	Bytes   int64 `json:"bytes"`
	// Allocated is the disk space the shards take (what removing them
	// gives back); Used the sum of their used sizes.
	Allocated int64 `json:"allocated"`
	Used      int64 `json:"used"`
	Problems  int   `json:"shards_with_problems"`
	// Archives counts the archive shards cleanup wrote (pid "archive-<n>",
	// not a process: not among the pids).
	Archives int `json:"archive_shards"`
}

func lsRun(ctx context.Context, opts *LsOptions) error {
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	infos, err := st.Shards(ctx)
	var loose []*store.ShardError
	if err != nil {
		var partial bool
		if loose, partial = store.Partial(err); !partial {
			return fmt.Errorf("list shards of %s: %w", st.Describe(), err)
		}
	}
	lst, local := store.As[store.Local](st)
	checkPIDs := local || opts.Local
	barrier := ""
	if local && cleanup.HasBarrier(lst.Dir()) {
		barrier = filepath.Join(lst.Dir(), filestore.BarrierName)
		fmt.Fprintf(opts.IO.ErrOut, "promstore: note: %s: %s\n", barrier, barrierNote)
	}
	alive := map[string]store.Liveness{}
	rows := make([]lsRow, 0, len(infos))
	for _, in := range infos {
		r := lsRow{
			Kind: string(in.ID.Kind), Mode: in.ID.Mode, PID: in.ID.PID, Alive: string(store.AliveUnknown),
			Samples: in.Samples, Bytes: in.Bytes, Allocated: in.Allocated, Used: in.Used, Layout: in.Layout,
			// UTC, as TSV writes it: a file's mtime comes in local time.
			Updated:  in.Updated.UTC(),
			Location: in.Location, Problems: in.Problems,
		}
		if in.ID.Kind != "" {
			r.Name = in.ID.String()
		} else {
			r.Name = lsLastElem(in.Location)
		}
		if r.Problems == nil {
			r.Problems = []string{}
		}
		if store.IsArchivePID(in.ID.PID) {
			// Not a process: what cleanup compacted dead ones into.
			r.Alive = lsArchive
		} else if checkPIDs && in.ID.PID != "" {
			l, ok := alive[in.ID.PID]
			if !ok {
				l = opts.Alive(in.ID.PID)
				alive[in.ID.PID] = l
			}
			r.Alive = string(l)
		}
		rows = append(rows, r)
	}
	lsSort(rows, opts.Sort)
	tot := lsTotalsOf(rows)
	for _, p := range loose {
		fmt.Fprintf(opts.IO.ErrOut, "promstore: warning: %v\n", p)
	}
	if len(infos) == 0 && len(loose) == 0 {
		_ = reportNoShards(ctx, opts.IO.ErrOut, st, false)
	}
	format := opts.Format
	if format == "" {
		format = "tsv"
		if opts.IO.OutTTY {
			format = "table"
		}
	}
	switch format {
	case "json":
		problems := []string{}
		for _, p := range loose {
			problems = append(problems, p.Error())
		}
		return lsJSON(opts.IO.Out, st.Describe(), rows, tot, problems, barrier)
	case "tsv":
		return lsTSV(opts.IO.Out, rows)
	}
	return lsTable(opts.IO, rows, tot, opts.now())
}

// barrierNote explains filestore.BarrierName where ls and fsck meet it.
const barrierNote = "the barrier of a cleanup that is running, or was killed (then its journal " + cleanup.JournalName +
	" is there too): Python's collector fails every scrape while it exists, instead of counting samples twice; promstore's readers skip it. " +
	"A rerun of promstore cleanup (or the sidecar's next compaction) finishes the interrupted run and removes it"

func (o *LsOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func lsLastElem(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func lsSort(rows []lsRow, by string) {
	less := func(a, b *lsRow) int { return strings.Compare(a.Name, b.Name) }
	cmpNum := func(x, y int64) int {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	var key func(a, b *lsRow) int
	switch by {
	case "pid":
		key = func(a, b *lsRow) int {
			return store.ComparePIDs(a.PID, b.PID)
		}
	case "kind":
		key = func(a, b *lsRow) int {
			if c := strings.Compare(a.Kind, b.Kind); c != 0 {
				return c
			}
			return strings.Compare(a.Mode, b.Mode)
		}
	case "samples":
		key = func(a, b *lsRow) int { return -cmpNum(int64(a.Samples), int64(b.Samples)) }
	case "bytes":
		key = func(a, b *lsRow) int { return -cmpNum(a.Bytes, b.Bytes) }
	case "updated":
		key = func(a, b *lsRow) int { return -a.Updated.Compare(b.Updated) }
	default:
		key = less
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if c := key(&rows[i], &rows[j]); c != 0 {
			return c < 0
		}
		return less(&rows[i], &rows[j]) < 0
	})
}

func lsTotalsOf(rows []lsRow) lsTotals {
	t := lsTotals{Shards: len(rows)}
	seen := map[string]bool{}
	for _, r := range rows {
		t.Samples += r.Samples
		t.Bytes += r.Bytes
		t.Allocated += r.Allocated
		t.Used += r.Used
		if len(r.Problems) > 0 {
			t.Problems++
		}
		if store.IsArchivePID(r.PID) {
			t.Archives++
			continue
		}
		if r.PID == "" || seen[r.PID] {
			continue
		}
		seen[r.PID] = true
		t.PIDs++
		switch store.Liveness(r.Alive) {
		case store.AliveYes:
			t.Alive++
		case store.AliveNo:
			t.Dead++
		default:
			t.Unknown++
		}
	}
	return t
}
