package aggregate

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// pidNum returns the number of a process id.
func (a *Aggregator) pidNum(pid string) int32 {
	if pid == a.lastPID && len(a.pids) > 0 {
		return a.lastNum
	}
	n, ok := a.pidNums[pid]
	if !ok {
		n = int32(len(a.pids))
		a.pids = append(a.pids, pid)
		a.pidNums[pid] = n
	}
	a.lastPID, a.lastNum = pid, n
	return n
}

// pidOrder returns the pid numbers in output order (store.ComparePIDs).
func (a *Aggregator) pidOrder() []int32 {
	order := make([]int32, len(a.pids))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return store.ComparePIDs(a.pids[x], a.pids[y]) })
	return order
}

// appendLabelsKey encodes the order of label sets: label names as strings,
// "pid" values in pid order (store.ComparePIDs), other values as strings;
// a shorter set that is a prefix of a longer one sorts first.
func appendLabelsKey(b []byte, labels []store.Label) []byte {
	for _, l := range labels {
		b = append(b, l.Name...)
		b = append(b, 0)
		if l.Name == "pid" {
			b = store.AppendPIDKey(b, l.Value)
			continue
		}
		b = append(b, 2)
		b = append(b, l.Value...)
		b = append(b, 0)
	}
	return append(b, 0)
}

// sortItem is a sample with its sort key: one byte string whose order is
// the sample order, so that sorting costs one comparison of two strings.
type sortItem struct {
	Sample
	key string
}

func newSortItem(s Sample) sortItem {
	return sortItem{Sample: s, key: string(appendSortKey(nil, &s))}
}

// appendSortKey encodes the order of samples: by label set without "le"
// (label names as strings; "pid" values in pid order, every other value
// as a string), then by sample name, then by
// "le" numerically. So each series reads as one group: a histogram's
// buckets in ascending le, then _count and _sum; a gauge's processes in
// pid order.
func appendSortKey(b []byte, s *Sample) []byte {
	le, hasLE := "", false
	var pid *store.Label
	rest := make([]store.Label, 0, len(s.Labels))
	for i, l := range s.Labels {
		switch l.Name {
		case "le":
			le, hasLE = l.Value, true
		case "pid":
			pid = &s.Labels[i]
		default:
			rest = append(rest, l)
		}
	}
	b = appendLabelsKey(b, rest)
	b = append(b, s.Name...)
	b = append(b, 0)
	if pid != nil {
		b = appendLabelsKey(b, []store.Label{*pid})
	}
	b = append(b, 0)
	if hasLE {
		if f, ok := parseNumber(le); ok {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, orderedBits(f))
		} else {
			b = append(b, 2)
			b = append(b, le...)
		}
	}
	return b
}

// orderedBits maps a float to an integer of the same order (NaN last).
func orderedBits(f float64) uint64 {
	if math.IsNaN(f) {
		return math.MaxUint64
	}
	u := math.Float64bits(f)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

// parseNumber parses v as a float, sparing ParseFloat (and its error
// allocation) the values that cannot be numbers.
func parseNumber(v string) (float64, bool) {
	if v == "" {
		return 0, false
	}
	if c := v[0]; !(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// compareItems orders samples by their sort keys; equal keys (only
// possible with NUL bytes in label values) fall back to the label text.
func compareItems(a, b *sortItem) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	n := min(len(a.Labels), len(b.Labels))
	for i := 0; i < n; i++ {
		if c := strings.Compare(a.Labels[i].Name, b.Labels[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Labels[i].Value, b.Labels[i].Value); c != 0 {
			return c
		}
	}
	return len(a.Labels) - len(b.Labels)
}

func sortItems(items []sortItem) []Sample {
	ptrs := make([]*sortItem, len(items))
	for i := range items {
		ptrs[i] = &items[i]
	}
	slices.SortFunc(ptrs, compareItems)
	out := make([]Sample, len(ptrs))
	for i, it := range ptrs {
		out[i] = it.Sample
	}
	return out
}

// SortSamples sorts samples series by series: by label set without le,
// then name, then le (see appendSortKey).
func SortSamples(ss []Sample) {
	items := make([]sortItem, len(ss))
	for i := range ss {
		items[i] = newSortItem(ss[i])
	}
	copy(ss, sortItems(items))
}
