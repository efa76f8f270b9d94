package render

import (
	"bufio"
	"io"
	"runtime"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// Format is one of the outputs of the merged families: an exposition, or
// promstore's JSON.
type Format struct {
	Exposition
	// JSON selects the JSON of JSONFor (values spelled as Client spells
	// them) instead of the exposition.
	JSON bool
}

// Write writes fams as Exposition.Write, or JSONFor, does.
func (f Format) Write(w io.Writer, fams []aggregate.Family) error {
	if f.JSON {
		return JSONFor(w, fams, f.Client)
	}
	return f.Exposition.Write(w, fams)
}

// RejectedHeaders returns what Exposition.Rejected finds in the families
// of st, and true, when every name their samples carry is written as it
// is: then only two families' headers can come out alike, which the
// families without their samples show (Streamer.Headers). It returns
// false otherwise, for the caller to ask Rejected with the samples.
func (e Exposition) RejectedHeaders(st *aggregate.Streamer) ([]string, bool) {
	if !st.Names(func(n string, metric bool) bool {
		if metric {
			return legacyMetricName(n)
		}
		return legacyLabelName(n)
	}) {
		return nil, false
	}
	return e.Rejected(st.Headers()), true
}

// Output chunks of a stream: a worker sends its chunk once it holds
// chunkBytes (made with room for a line more); streamDepth chunks of a
// family wait at most.
const (
	chunkBytes  = 64 << 10
	streamDepth = 4
)

// Stream writes the families of st as Write writes them all (the
// families aggregate.Families returns), byte for byte, without holding
// them all: each family's samples are built a batch at a time (see
// aggregate.Streamer) by one of every core's workers, several families
// at once, and its output goes to w in chunks as it comes, in family
// order. The output and samples held at once are a few chunks and
// batches per worker, however large the families.
func (f Format) Stream(w io.Writer, st *aggregate.Streamer) error {
	workers := runtime.GOMAXPROCS(0)
	ahead := 2 * workers
	type worker struct {
		sc    aggregate.StreamScratch
		moved [len(omSuffixes)][]aggregate.Sample
	}
	ws := make([]worker, workers)
	free := newBufPool((ahead+workers)*(streamDepth+1), chunkBytes+chunkBytes/8)
	bw := bufio.NewWriterSize(w, 64<<10)
	if f.JSON {
		bw.WriteString(jsonHead)
	}
	n := st.Len()
	err := store.OrderedStream(n, workers, ahead, streamDepth, func(wi, i int, send func([]byte)) {
		wk := &ws[wi]
		fam := st.Header(i)
		if f.JSON {
			b, j := appendFamilyJSON(free.get(), &fam, i), 0
			st.Samples(i, &wk.sc, func(batch []aggregate.Sample) {
				for k := range batch {
					b = appendSampleJSON(b, &batch[k], j, f.Client)
					j++
					if len(b) >= chunkBytes {
						send(b)
						b = free.get()
					}
				}
			})
			send(append(b, jsonFamilyEnd...))
			return
		}
		// The exposition: samples named <family>_created, _gcount or
		// _gsum move under headers of their own after the family's (see
		// textUnits); they are copied aside, with their labels.
		tw := textWriter{Exposition: f.Exposition, b: free.get()}
		mname, mtype := headerNames(&fam, f.OpenMetrics)
		tw.header(mname, mtype, fam.Help)
		st.Samples(i, &wk.sc, func(batch []aggregate.Sample) {
			for k := range batch {
				s := &batch[k]
				if !f.OpenMetrics {
					if m := omSuffix(fam.Name, s.Name); m >= 0 {
						c := *s
						c.Labels = append([]store.Label(nil), s.Labels...)
						wk.moved[m] = append(wk.moved[m], c)
						continue
					}
				}
				tw.sample(s)
				if len(tw.b) >= chunkBytes {
					send(tw.b)
					tw.b = free.get()
				}
			}
		})
		for m := range wk.moved {
			if len(wk.moved[m]) == 0 {
				continue
			}
			tw.header(fam.Name+omSuffixes[m], "gauge", fam.Help)
			for k := range wk.moved[m] {
				tw.sample(&wk.moved[m][k])
			}
			clear(wk.moved[m])
			wk.moved[m] = wk.moved[m][:0]
		}
		send(tw.b)
	}, func(b []byte) error {
		_, err := bw.Write(b)
		free.put(b)
		return err
	})
	if err != nil {
		return err
	}
	switch {
	case f.JSON:
		bw.WriteString(jsonTail(n))
	case f.OpenMetrics && !f.NoEOF:
		bw.WriteString("# EOF\n")
	}
	return bw.Flush()
}

// bufPool keeps buffers written out for workers to fill again: at most
// as many as it was made for; get makes a new one of size bytes' room
// when none is kept.
type bufPool struct {
	free chan []byte
	size int
}

func newBufPool(keep, size int) bufPool {
	return bufPool{free: make(chan []byte, keep), size: size}
}

func (p bufPool) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, 0, p.size)
	}
}

// put keeps b, emptied, unless the pool is full.
func (p bufPool) put(b []byte) {
	select {
	case p.free <- b[:0]:
	default:
	}
}
