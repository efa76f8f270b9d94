package migrate

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func open(t *testing.T, dir string, layout int) *filestore.Store {
	t.Helper()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func dump(t *testing.T, st store.Reader) string {
	t.Helper()
	return string(storetest.Dump(t, st))
}

func key(t *testing.T, text string) *store.Key {
	t.Helper()
	k, err := store.ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	counterID = store.ShardID{Kind: store.KindCounter, PID: "7"}
	gaugeID   = store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "7"}
)

const (
	kReq = `["req", "req_total", {"code": "200"}, "Requests."]`
	kErr = `["req", "req_total", {"code": "500"}, "Requests."]`
	kTmp = `["temp", "temp", {}, "Temperature."]`
)

func write(t *testing.T, st store.Writer, id store.ShardID, kv ...any) {
	t.Helper()
	var ss []store.Sample
	for i := 0; i < len(kv); i += 2 {
		ss = append(ss, store.Sample{Shard: id, Key: key(t, kv[i].(string)), Value: kv[i+1].(float64)})
	}
	if err := st.WriteShard(context.Background(), id, ss); err != nil {
		t.Fatal(err)
	}
}

// smallSource is a source with a counter and a gauge shard.
func smallSource(t *testing.T) *filestore.Store {
	src := open(t, t.TempDir(), 16)
	write(t, src, counterID, kReq, 5.0, kErr, 2.0)
	write(t, src, gaugeID, kTmp, 21.5)
	return src
}

func run(t *testing.T, src, dst store.Store, opts Options) (*Plan, error) {
	t.Helper()
	ctx := context.Background()
	p, err := Build(ctx, src, dst, opts)
	if err != nil {
		return nil, err
	}
	if _, err := Execute(ctx, p, dst, opts); err != nil {
		return p, err
	}
	r, err := Verify(ctx, p, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("verify: %s", r.Summary())
	}
	return p, nil
}

func TestMigrateFixtureIntoEmptyStoreAndRerun(t *testing.T) {
	fx := testenv.FixturesDir(t)
	src := open(t, testenv.CopyStore(t, filepath.Join(fx, "python-0.25-files", "store")), 16)
	dst := open(t, t.TempDir(), 16)
	p, err := run(t, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.New != p.Samples || p.Same != 0 || p.Conflicts != 0 || p.Samples == 0 {
		t.Fatalf("first run: %d samples, %d new, %d same, %d conflicts", p.Samples, p.New, p.Same, p.Conflicts)
	}
	if got, want := dump(t, dst), dump(t, src); got != want {
		t.Fatalf("target dump differs from source dump")
	}
	again, err := run(t, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Done() || again.Same != p.Samples || again.WriteShards() != 0 {
		t.Fatalf("rerun: done=%v same=%d of %d, %d shards to write", again.Done(), again.Same, p.Samples, again.WriteShards())
	}
}

func TestConflictPolicies(t *testing.T) {
	tests := []struct {
		policy              Policy
		wantErr             bool
		wantReq, wantErrVal float64
	}{
		{policy: Fail, wantErr: true, wantReq: 10, wantErrVal: 0},
		{policy: Skip, wantReq: 10, wantErrVal: 2},
		{policy: Overwrite, wantReq: 5, wantErrVal: 2},
		{policy: Sum, wantReq: 15, wantErrVal: 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			src := smallSource(t)
			dst := open(t, t.TempDir(), 16)
			// The target already has req{200}=10 (a conflict) and an
			// unrelated sample in the same shard.
			write(t, dst, counterID, kReq, 10.0, `["other", "other_total", {}, "Other."]`, 1.0)
			opts := Options{OnConflict: tt.policy, Journal: filepath.Join(t.TempDir(), "journal")}
			p, err := run(t, src, dst, opts)
			var ce *ConflictError
			if tt.wantErr {
				if !errors.As(err, &ce) || ce.Conflicts != 1 {
					t.Fatalf("err = %v, want a ConflictError with 1 conflict", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := values(t, dst, counterID)
			if got[kReq] != tt.wantReq || got[kErr] != tt.wantErrVal || got[`["other", "other_total", {}, "Other."]`] != 1 {
				t.Fatalf("target = %v, want req=%v err=%v other=1", got, tt.wantReq, tt.wantErrVal)
			}
			if tt.wantErr {
				if len(values(t, dst, gaugeID)) != 0 {
					t.Fatal("fail policy wrote the gauge shard")
				}
				if cl := p.ConflictList(0); len(cl) != 1 || cl[0].Source.Value != 5 || cl[0].Target.Value != 10 {
					t.Fatalf("conflict list = %+v", cl)
				}
				return
			}
			// A rerun with the same policy changes nothing more.
			again, err := run(t, src, dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			if again.Writes != 0 {
				t.Fatalf("rerun writes %d samples", again.Writes)
			}
			if got := values(t, dst, counterID); got[kReq] != tt.wantReq {
				t.Fatalf("after rerun req = %v, want %v", got[kReq], tt.wantReq)
			}
		})
	}
}

func values(t *testing.T, st store.Reader, id store.ShardID) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	if err := st.Scan(context.Background(), func(s store.Sample) error {
		if s.Shard == id {
			out[store.CanonicalKeyText(s.Key)] = s.Value
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSumNeedsJournalAndSurvivesInterruption(t *testing.T) {
	ctx := context.Background()
	src := open(t, t.TempDir(), 16)
	other := store.ShardID{Kind: store.KindCounter, PID: "8"}
	write(t, src, counterID, kReq, 5.0)
	write(t, src, other, kReq, 1.0)
	dst := open(t, t.TempDir(), 16)
	write(t, dst, counterID, kReq, 10.0)
	write(t, dst, other, kReq, 100.0)

	if _, err := Build(ctx, src, dst, Options{OnConflict: Sum}); err == nil {
		t.Fatal("sum without a journal was accepted")
	}
	journal := filepath.Join(t.TempDir(), "j")
	opts := Options{OnConflict: Sum, Journal: journal, Workers: 1}
	p, err := Build(ctx, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Interrupt after the first shard: the second is never written.
	cctx, cancel := context.WithCancel(ctx)
	opts.Progress = func(Progress) { cancel() }
	if _, err := Execute(cctx, p, dst, opts); err == nil {
		t.Fatal("interrupted run reported success")
	}
	opts.Progress = nil
	if got := values(t, dst, counterID)[kReq] + values(t, dst, other)[kReq]; got != 15+100 {
		t.Fatalf("after the interruption the targets sum to %v, want 115 (one shard summed)", got)
	}
	// The rerun sums only the shard not yet summed.
	p, err = run(t, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.Same != 1 || p.Conflicts != 1 || p.Writes != 1 {
		t.Fatalf("rerun plan: same %d conflicts %d writes %d, want 1 1 1", p.Same, p.Conflicts, p.Writes)
	}
	if a, b := values(t, dst, counterID)[kReq], values(t, dst, other)[kReq]; a != 15 || b != 101 {
		t.Fatalf("after rerun: %v and %v, want 15 and 101", a, b)
	}
	// A third run: everything already summed.
	p, err = run(t, src, dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done() {
		t.Fatalf("third run not done: %+v", p)
	}
	// A worker counts one more into a summed sample (15 -> 16): a rerun
	// cannot tell whether the source is in it and refuses, naming it,
	// rather than add it twice (21) or write anything.
	write(t, dst, counterID, kReq, 16.0)
	if _, err := Build(ctx, src, dst, opts); err == nil || !strings.Contains(err.Error(), "whether the source is in the target's value cannot be told") ||
		!strings.Contains(err.Error(), "the target holds 16.0, the source 5.0: a process wrote it since") {
		t.Fatalf("rerun after a worker wrote a summed sample: err = %v", err)
	}
	if v := values(t, dst, counterID)[kReq]; v != 16 {
		t.Fatalf("the refused rerun changed the target: %v", v)
	}
	// --on-conflict skip settles it, as the message says.
	if _, err := run(t, src, dst, Options{OnConflict: Skip, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if v := values(t, dst, counterID)[kReq]; v != 16 {
		t.Fatalf("after skip: %v, want 16", v)
	}
	write(t, dst, counterID, kReq, 15.0)
	// A gauge conflict cannot be summed.
	write(t, src, gaugeID, kTmp, 1.0)
	write(t, dst, gaugeID, kTmp, 2.0)
	if _, err := Build(ctx, src, dst, opts); err == nil || !strings.Contains(err.Error(), "gauges are not summed") {
		t.Fatalf("gauge sum: err = %v", err)
	}
}

func TestPIDPrefix(t *testing.T) {
	src := smallSource(t)
	dst := open(t, t.TempDir(), 16)
	p, err := run(t, src, dst, Options{PIDPrefix: "web1-"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Shards[0].Target.PID != "web1-7" {
		t.Fatalf("target pid = %q", p.Shards[0].Target.PID)
	}
	d := dump(t, dst)
	if !strings.Contains(d, `temp{pid="web1-7"} 21.5`) {
		t.Fatalf("gauge pid label not prefixed:\n%s", d)
	}
	// A second host's shards with the same pid go beside, not on top.
	src2 := open(t, t.TempDir(), 16)
	write(t, src2, counterID, kReq, 1.0)
	if _, err := run(t, src2, dst, Options{PIDPrefix: "web2-"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump(t, dst), `req_total{code="200"} 6.0`) {
		t.Fatalf("two hosts' counters not summed:\n%s", dump(t, dst))
	}
}

func TestCheckTargetRejectsBeforeWriting(t *testing.T) {
	src := smallSource(t)
	dst := open(t, t.TempDir(), 16)
	_, err := Build(context.Background(), src, dst, Options{CheckTarget: func(id store.ShardID) error {
		if id.Kind == store.KindGauge {
			return io.ErrUnexpectedEOF
		}
		return nil
	}})
	if err == nil || !strings.Contains(err.Error(), "gauge_all_7") {
		t.Fatalf("err = %v", err)
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	ctx := context.Background()
	src := smallSource(t)
	dst := open(t, t.TempDir(), 16)
	p, err := run(t, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone changes a target value and adds a sample after the write.
	write(t, dst, counterID, kReq, 6.0, `["new", "new_total", {}, "New."]`, 1.0)
	r, err := Verify(ctx, p, dst)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.Different != 1 || r.Unexpected != 1 || r.Missing != 0 {
		t.Fatalf("report: %+v", r)
	}
	if s := r.Summary(); !strings.Contains(s, "want 5.0") || !strings.Contains(s, "got 6.0") {
		t.Fatalf("summary lacks the values:\n%s", s)
	}
	if err := dst.DeleteShard(ctx, gaugeID); err != nil {
		t.Fatal(err)
	}
	r, err = Verify(ctx, p, dst)
	if err != nil {
		t.Fatal(err)
	}
	if r.Missing != 1 {
		t.Fatalf("missing = %d, want 1", r.Missing)
	}
}

func TestNaNIsNotAConflict(t *testing.T) {
	// NaN payload bits do not survive every store (Redis keeps "nan"):
	// NaN against NaN is the same value.
	src := open(t, t.TempDir(), 16)
	write(t, src, gaugeID, kTmp, math.Float64frombits(0x7ff8000000000123))
	dst := open(t, t.TempDir(), 16)
	write(t, dst, gaugeID, kTmp, math.NaN())
	p, err := run(t, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done() {
		t.Fatalf("NaN against NaN planned as %+v", p)
	}
}

func TestDeleteSource(t *testing.T) {
	ctx := context.Background()
	src := smallSource(t)
	dst := open(t, t.TempDir(), 16)
	p, err := run(t, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A live process writes after the plan was read: nothing is deleted.
	write(t, src, counterID, kReq, 9.0)
	if _, _, err := DeleteSource(ctx, p, src, nil); err == nil || !strings.Contains(err.Error(), "counter_7 changed") {
		t.Fatalf("err = %v", err)
	}
	if len(values(t, src, gaugeID)) != 1 {
		t.Fatal("a shard was deleted although the source changed")
	}
	p, err = run(t, src, dst, Options{OnConflict: Overwrite})
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := DeleteSource(ctx, p, src, nil)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, err %v", n, err)
	}
	if d := dump(t, src); d != "" {
		t.Fatalf("source not empty:\n%s", d)
	}
}

func TestIgnoreTimestampsForLegacyTarget(t *testing.T) {
	src := open(t, t.TempDir(), 16)
	id := store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "7"}
	if err := src.WriteShard(context.Background(), id, []store.Sample{{Shard: id, Key: key(t, kTmp), Value: 3, Timestamp: 1700000000.5}}); err != nil {
		t.Fatal(err)
	}
	dst := open(t, t.TempDir(), 8)
	if _, err := run(t, src, dst, Options{IgnoreTimestamps: true}); err != nil {
		t.Fatal(err)
	}
	p, err := run(t, src, dst, Options{IgnoreTimestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Done() {
		t.Fatalf("rerun into the 8-byte layout saw conflicts: %+v", p)
	}
}

func TestTimestampDifferenceIsAConflict(t *testing.T) {
	ctx := context.Background()
	id := store.ShardID{Kind: store.KindGauge, Mode: "mostrecent", PID: "7"}
	put := func(st store.Writer, ts float64) {
		if err := st.WriteShard(ctx, id, []store.Sample{{Shard: id, Key: key(t, kTmp), Value: 3, Timestamp: ts}}); err != nil {
			t.Fatal(err)
		}
	}
	src := open(t, t.TempDir(), 16)
	put(src, 1700000000.5)
	dst := open(t, t.TempDir(), 16)
	put(dst, 1700000001.5)
	p, err := Build(ctx, src, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Conflicts != 1 {
		t.Fatalf("same value, other timestamp: %d conflicts, want 1", p.Conflicts)
	}
	p, err = Build(ctx, src, dst, Options{IgnoreTimestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Same != 1 {
		t.Fatalf("timestamps ignored: same = %d, want 1", p.Same)
	}
}

// TestSumJournalCases: what a journal of sums tells a rerun, case by
// case: a source of 0 is no conflict to journal; an entry of an earlier
// version (no pre value) still resumes an interrupted sum; a source
// summed once and changed since is refused, not added again; a run
// repeated after another source was summed into the same sample adds
// nothing; every refused sample is listed.
func TestSumJournalCases(t *testing.T) {
	ctx := context.Background()
	sumOpts := func() Options {
		return Options{OnConflict: Sum, Journal: filepath.Join(t.TempDir(), "j"), Workers: 1}
	}
	t.Run("zero source", func(t *testing.T) {
		src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
		write(t, src, counterID, kReq, 0.0)
		write(t, dst, counterID, kReq, 10.0)
		opts := sumOpts()
		if _, err := run(t, src, dst, opts); err != nil {
			t.Fatal(err)
		}
		write(t, dst, counterID, kReq, 12.0) // a worker counts on
		if p, err := run(t, src, dst, opts); err != nil || !p.Done() {
			t.Fatalf("rerun: %v, %+v", err, p)
		}
		if v := values(t, dst, counterID)[kReq]; v != 12 {
			t.Fatalf("target %v, want 12", v)
		}
	})
	t.Run("entry of an earlier version resumes", func(t *testing.T) {
		src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
		write(t, src, counterID, kReq, 5.0)
		write(t, dst, counterID, kReq, 10.0)
		opts := sumOpts()
		// Journaled by an earlier promstore (no pre, no source), the run
		// stopped before writing.
		line := `{"shard":"counter_7","key":` + strconv.Quote(store.CanonicalKeyText(key(t, kReq))) + `,"src":"` + bits(5) + `","src_ts":"` + bits(0) + `","post":"` + bits(15) + `","post_ts":"` + bits(0) + `"}` + "\n"
		if err := os.WriteFile(opts.Journal, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, src, dst, opts); err != nil {
			t.Fatal(err)
		}
		if v := values(t, dst, counterID)[kReq]; v != 15 {
			t.Fatalf("target %v, want 15", v)
		}
	})
	t.Run("source changed since its sum", func(t *testing.T) {
		src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
		write(t, src, counterID, kReq, 5.0)
		write(t, dst, counterID, kReq, 10.0)
		opts := sumOpts()
		if _, err := run(t, src, dst, opts); err != nil {
			t.Fatal(err)
		}
		write(t, src, counterID, kReq, 7.0) // the app ran on, then stopped
		_, err := Build(ctx, src, dst, opts)
		if err == nil || !strings.Contains(err.Error(), "summed with the value 5.0 before and holds 7.0 now") {
			t.Fatalf("err = %v", err)
		}
		if v := values(t, dst, counterID)[kReq]; v != 15 {
			t.Fatalf("target %v, want 15", v)
		}
	})
	t.Run("a run repeated after another source's", func(t *testing.T) {
		a, b, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
		write(t, a, counterID, kReq, 5.0)
		write(t, b, counterID, kReq, 3.0)
		write(t, dst, counterID, kReq, 10.0)
		opts := sumOpts()
		for _, src := range []*filestore.Store{a, b, a} {
			if _, err := run(t, src, dst, opts); err != nil {
				t.Fatal(err)
			}
		}
		if v := values(t, dst, counterID)[kReq]; v != 18 {
			t.Fatalf("target %v, want 18 (10 + 5 + 3, each once)", v)
		}
	})
	t.Run("every refused sample listed", func(t *testing.T) {
		src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
		other := store.ShardID{Kind: store.KindCounter, PID: "8"}
		write(t, src, counterID, kReq, 5.0)
		write(t, src, other, kReq, 1.0)
		write(t, dst, counterID, kReq, 10.0)
		write(t, dst, other, kReq, 100.0)
		opts := sumOpts()
		if _, err := run(t, src, dst, opts); err != nil {
			t.Fatal(err)
		}
		write(t, dst, counterID, kReq, 16.0)
		write(t, dst, other, kReq, 102.0)
		_, err := Build(ctx, src, dst, opts)
		if err == nil || !strings.Contains(err.Error(), "for 2 sample(s)") || !strings.Contains(err.Error(), "counter_7 ") || !strings.Contains(err.Error(), "counter_8 ") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestDuplicateKeySaysWhatItIs: a shard holding one key twice (fsck's
// duplicate, two writers of one file) cannot be migrated; the error said
// "(once as a legacy key?)" for it too. It names the duplicate as such,
// says why nothing is written and what to do; one sample under a legacy
// and a 4-element key is named as that.
func TestDuplicateKeySaysWhatItIs(t *testing.T) {
	const legacy = `["req", "req_total", {"code": "200"}]`
	const asNew = `["req", "req_total", {"code": "200"}, "Multiprocess metric"]`
	for _, c := range []struct {
		keys []string
		want []string
	}{
		{[]string{kReq, kErr, kReq}, []string{"holds the key " + kReq + " twice (fsck's duplicate", "writes nothing", "move the shard out of the source"}},
		{[]string{legacy, asNew}, []string{"under two keys, " + legacy + " and " + asNew, "legacy 3-element key", "move the shard out of the source"}},
	} {
		dir := t.TempDir()
		b := make([]byte, 8)
		for i, k := range c.keys {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
			b = append(b, k...)
			b = append(b, strings.Repeat(" ", 8-(len(k)+4)%8)...)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(i+1)))
			b = binary.LittleEndian.AppendUint64(b, 0)
		}
		binary.LittleEndian.PutUint32(b, uint32(len(b)))
		b = append(b, make([]byte, 1<<16-len(b))...)
		if err := os.WriteFile(filepath.Join(dir, "counter_7.db"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Build(context.Background(), open(t, dir, 0), open(t, t.TempDir(), 16), Options{})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("keys %q: err = %v, want it to say %q", c.keys, err, w)
			}
		}
	}
}
