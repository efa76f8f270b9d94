package migrate

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/render"
	"github.com/promstore/promstore/internal/store"
)

// Mismatch is one sample the target does not hold as expected.
type Mismatch struct {
	Shard store.ShardID
	// Key is the canonical key text.
	Key string
	// Want and Got describe the expected and found value ("missing" when
	// absent).
	Want, Got string
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Shards and Samples count what was compared.
	Shards, Samples int
	// Missing, Different and Unexpected count the sample mismatches.
	Missing, Different, Unexpected int
	// Mismatches lists the first sample mismatches.
	Mismatches []Mismatch
	// OnlyWant and OnlyGot are the first lines of the aggregated output
	// that only the expected, respectively only the target's, output has.
	OnlyWant, OnlyGot []string
	// Problems are target keys or shards the verifying scan could not read.
	Problems []*store.ShardError
}

// OK reports whether the target matched.
func (r *VerifyReport) OK() bool {
	return r.Missing == 0 && r.Different == 0 && r.Unexpected == 0 && len(r.OnlyWant) == 0 && len(r.OnlyGot) == 0
}

// Summary describes the mismatches in a few lines.
func (r *VerifyReport) Summary() string {
	if r.OK() {
		return fmt.Sprintf("verified %d shards, %d samples", r.Shards, r.Samples)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verification failed: %d missing, %d different, %d unexpected samples in %d target shards",
		r.Missing, r.Different, r.Unexpected, r.Shards)
	for _, m := range r.Mismatches {
		fmt.Fprintf(&b, "\n  %s %s: want %s, got %s", m.Shard, m.Key, m.Want, m.Got)
	}
	if len(r.OnlyWant)+len(r.OnlyGot) > 0 {
		b.WriteString("\n  aggregated output differs:")
		for _, l := range r.OnlyWant {
			fmt.Fprintf(&b, "\n  - %s", l)
		}
		for _, l := range r.OnlyGot {
			fmt.Fprintf(&b, "\n  + %s", l)
		}
	}
	return b.String()
}

const maxListed = 10

type want struct {
	s     store.Sample // with the source's key where the source has it
	found bool
}

// Verify rescans the target and compares the shards of the plan with what
// they must hold now: the samples the plan wrote, the target's own values
// where the plan left them (already present, skipped conflicts), and the
// target samples the source did not have. It compares sample by sample
// and, as a whole, the aggregated exposition of both (with the target's
// pids, so --pid-prefix does not stand out); samples of target shards
// outside the plan are not looked at.
func Verify(ctx context.Context, p *Plan, dst store.Reader) (*VerifyReport, error) {
	r := &VerifyReport{Shards: len(p.Shards)}
	wants := map[store.ShardID]map[string]*want{}
	for _, sp := range p.Shards {
		m := make(map[string]*want, len(sp.Items)+len(sp.others))
		for _, o := range sp.others {
			m[store.CanonicalKeyText(o.Key)] = &want{s: o}
		}
		for i := range sp.Items {
			it := &sp.Items[i]
			s := it.Sample
			switch {
			case it.Write:
				s.Value, s.Timestamp = it.WriteValue, it.WriteTS
			case it.Action != Create:
				s.Value, s.Timestamp = it.Target.Value, it.Target.Timestamp
			}
			m[it.Text] = &want{s: s}
		}
		wants[sp.Target] = m
	}

	var got []store.Sample
	err := dst.Scan(ctx, func(s store.Sample) error {
		m := wants[s.Shard]
		if m == nil {
			return nil
		}
		got = append(got, s)
		text := store.CanonicalKeyText(s.Key)
		w := m[text]
		switch {
		case w == nil:
			r.Unexpected++
			r.note(s.Shard, text, "nothing", describe(s))
		case w.found:
			r.Unexpected++
			r.note(s.Shard, text, "one sample", "a second one")
		default:
			w.found = true
			if !p.sameSample(w.s.Value, w.s.Timestamp, s) {
				r.Different++
				r.note(s.Shard, text, describe(w.s), describe(s))
			}
		}
		return nil
	})
	if problems, ok := store.Partial(err); ok {
		r.Problems = problems
	} else if err != nil {
		return nil, fmt.Errorf("verify: read target: %w", err)
	}
	var expected []store.Sample
	for _, sp := range p.Shards {
		m := wants[sp.Target]
		r.Samples += len(m)
		texts := make([]string, 0, len(m))
		for t := range m {
			texts = append(texts, t)
		}
		sort.Strings(texts)
		for _, t := range texts {
			w := m[t]
			if !w.found {
				r.Missing++
				r.note(sp.Target, t, describe(w.s), "missing")
			}
			expected = append(expected, w.s)
		}
	}
	if r.Missing+r.Different+r.Unexpected == 0 {
		if err := r.compareAggregates(expected, got, p.ignoreTS); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *VerifyReport) note(id store.ShardID, text, want, got string) {
	if len(r.Mismatches) < maxListed {
		r.Mismatches = append(r.Mismatches, Mismatch{Shard: id, Key: text, Want: want, Got: got})
	}
}

func describe(s store.Sample) string {
	return fmt.Sprintf("%s (timestamp %s)", store.PyRepr(s.Value), store.PyRepr(s.Timestamp))
}

// compareAggregates aggregates both sample sets in the same order (shard,
// then key text, so that "first help seen" and mostrecent ties resolve
// alike) and compares the rendered expositions line by line.
func (r *VerifyReport) compareAggregates(want, got []store.Sample, ignoreTS bool) error {
	wt, err := exposition(want, ignoreTS)
	if err != nil {
		return err
	}
	gt, err := exposition(got, ignoreTS)
	if err != nil {
		return err
	}
	if bytes.Equal(wt, gt) {
		return nil
	}
	r.OnlyWant, r.OnlyGot = lineDiff(wt, gt)
	if len(r.OnlyWant)+len(r.OnlyGot) == 0 {
		// Same lines in another order: still a difference.
		r.OnlyWant = []string{"(same lines in a different order)"}
	}
	return nil
}

func exposition(samples []store.Sample, ignoreTS bool) ([]byte, error) {
	type keyed struct {
		shard, text string
		s           store.Sample
	}
	sorted := make([]keyed, len(samples))
	for i, s := range samples {
		sorted[i] = keyed{s.Shard.String(), store.CanonicalKeyText(s.Key), s}
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].shard != sorted[j].shard {
			return sorted[i].shard < sorted[j].shard
		}
		return sorted[i].text < sorted[j].text
	})
	agg := aggregate.New()
	for _, k := range sorted {
		s := k.s
		if ignoreTS {
			s.Timestamp = 0
		}
		if err := agg.Add(s); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := render.Text(&buf, agg.Families()); err != nil {
		return nil, fmt.Errorf("verify: render: %w", err)
	}
	return buf.Bytes(), nil
}

// lineDiff returns the first lines only a has and only b has (as
// multisets).
func lineDiff(a, b []byte) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, l := range strings.Split(string(a), "\n") {
		count[l]++
	}
	for _, l := range strings.Split(string(b), "\n") {
		count[l]--
	}
	for _, l := range strings.Split(string(a), "\n") {
		if count[l] > 0 && len(onlyA) < maxListed {
			onlyA = append(onlyA, l)
			count[l]--
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if count[l] < 0 && len(onlyB) < maxListed {
			onlyB = append(onlyB, l)
			count[l]++
		}
	}
	return onlyA, onlyB
}
