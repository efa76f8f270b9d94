package render

import (
	"fmt"
	"strings"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/store"
)

// Rejected lists what in the exposition e writes for fams a Prometheus
// server would reject the scrape for, where escaping names makes two
// things one: two families written under one name (two "# HELP" blocks,
// e.g. keys "a b" and "a_b"), a label written twice in a series (labels
// "r-" and "r_"), two series written alike. Python writes such output
// as it is, and so does promstore; this says so. Families whose names
// are all written as they are cost one check per label.
func (e Exposition) Rejected(fams []aggregate.Family) []string {
	var problems []string
	tw := textWriter{Exposition: e}
	written := func(n string, metric bool) string {
		tw.b = tw.b[:0]
		if metric {
			tw.metricName(n)
		} else {
			tw.labelName(n)
		}
		return string(tw.b)
	}
	headers := map[string]string{} // name written in "# HELP" -> family
	for i := range fams {
		f := &fams[i]
		mname := f.Name
		if f.Type == store.KindCounter && !e.OpenMetrics {
			mname += "_total"
		}
		h := written(mname, true)
		if other, ok := headers[h]; ok {
			problems = append(problems, fmt.Sprintf("families %q and %q are both written as %s (two # HELP %s blocks)", store.Clip(other), store.Clip(f.Name), store.Clip(h), store.Clip(h)))
			continue
		}
		headers[h] = f.Name
		if legacyMetricName(f.Name) && legacyLabels(f.Samples) {
			continue // written as they are: nothing can become alike
		}
		series := map[string]bool{}
		for j := range f.Samples {
			s := &f.Samples[j]
			var b strings.Builder
			b.WriteString(written(s.Name, true))
			seen := map[string]bool{}
			for _, l := range s.Labels {
				ln := written(l.Name, false)
				if seen[ln] {
					problems = append(problems, fmt.Sprintf("series of %s: label %s written twice (from labels that differ before escaping)", store.Clip(b.String()), store.Clip(ln)))
				}
				seen[ln] = true
				fmt.Fprintf(&b, "\x00%s\x00%s", ln, l.Value)
			}
			if sig := b.String(); series[sig] {
				problems = append(problems, fmt.Sprintf("duplicate series %s (from names that differ before escaping)", store.Clip(strings.ReplaceAll(sig, "\x00", " "))))
			} else {
				series[sig] = true
			}
		}
	}
	return problems
}

// legacyLabels reports whether every label name of samples is written as
// it is.
func legacyLabels(samples []aggregate.Sample) bool {
	for i := range samples {
		if !legacyMetricName(samples[i].Name) {
			return false
		}
		for _, l := range samples[i].Labels {
			if !legacyLabelName(l.Name) {
				return false
			}
		}
	}
	return true
}
