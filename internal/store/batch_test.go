package store

import (
	"context"
	"errors"
	"testing"
)

// sliceReader is a Reader over samples held in memory, without
// ScanShards; err is returned after the samples (a *PartialError for
// skipped shards).
type sliceReader struct {
	samples []Sample
	err     error
}

func (r *sliceReader) Scan(_ context.Context, fn ScanFunc) error {
	for _, s := range r.samples {
		if err := fn(s); err != nil {
			return err
		}
	}
	return r.err
}

func (r *sliceReader) Shards(context.Context) ([]ShardInfo, error) { return nil, nil }

func TestScanShardsGroupsScan(t *testing.T) {
	a := ShardID{Kind: KindCounter, PID: "1"}
	b := ShardID{Kind: KindCounter, PID: "2"}
	k := &Key{Text: "k"}
	smp := func(id ShardID, v float64) Sample { return Sample{Shard: id, Key: k, Value: v} }
	partial := &PartialError{Problems: []*ShardError{{Shard: "x", Offset: -1, Reason: "corrupt"}}}
	stop := errors.New("stop")
	type call struct {
		id     ShardID
		values []float64
	}
	tests := []struct {
		name    string
		r       *sliceReader
		failAt  int // the fn call that returns stop, 0 for none
		want    []call
		wantErr error
	}{
		{"empty", &sliceReader{}, 0, nil, nil},
		{"runs of one shard", &sliceReader{samples: []Sample{smp(a, 1), smp(a, 2), smp(b, 3), smp(a, 4)}}, 0,
			[]call{{a, []float64{1, 2}}, {b, []float64{3}}, {a, []float64{4}}}, nil},
		{"partial error after the last shard", &sliceReader{samples: []Sample{smp(a, 1), smp(b, 2)}, err: partial}, 0,
			[]call{{a, []float64{1}}, {b, []float64{2}}}, partial},
		{"fn fails", &sliceReader{samples: []Sample{smp(a, 1), smp(b, 2), smp(a, 3)}}, 2,
			[]call{{a, []float64{1}}, {b, []float64{2}}}, stop},
		{"fn fails on the last shard", &sliceReader{samples: []Sample{smp(a, 1)}, err: partial}, 1,
			[]call{{a, []float64{1}}}, stop},
		{"scan fails", &sliceReader{samples: []Sample{smp(a, 1)}, err: context.Canceled}, 0, nil, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []call
			err := ScanShards(context.Background(), tc.r, func(id ShardID, entries []Entry) error {
				c := call{id: id}
				for _, e := range entries {
					c.values = append(c.values, e.Value)
				}
				got = append(got, c)
				if len(got) == tc.failAt {
					return stop
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("calls %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].id != tc.want[i].id || len(got[i].values) != len(tc.want[i].values) {
					t.Fatalf("calls %v, want %v", got, tc.want)
				}
				for j := range got[i].values {
					if got[i].values[j] != tc.want[i].values[j] {
						t.Fatalf("calls %v, want %v", got, tc.want)
					}
				}
			}
		})
	}
}
