package serve

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/render"
)

// The Content-Type values prometheus_client's make_wsgi_app answers with.
const (
	contentText004 = "text/plain; version=0.0.4; charset=utf-8"
	contentText100 = "text/plain; version=1.0.0; charset=utf-8"
	contentOM001   = "application/openmetrics-text; version=0.0.1; charset=utf-8"
	contentOM100   = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// answer is how one scrape is answered: the body's exposition and the
// Content-Type header.
type answer struct {
	expo        render.Exposition
	contentType string
}

// negotiate picks the answer to an Accept header exactly as
// prometheus_client's choose_encoder does in release client, so that a
// scraper gets from promstore what it gets from the Python app:
//
// From 0.23 on, the header's entries are read in order, ignoring their
// q values: the first application/openmetrics-text entry without a
// version, or with a version of 1.0.0 or more, selects OpenMetrics; the
// first text/plain entry with a version of 1.0.0 or more selects the text
// format 1.0.0. Both honour an escaping parameter (allow-utf-8,
// underscores, dots, values; anything else is underscores) and name it in
// the Content-Type, except OpenMetrics without a version. Any other header
// gets the text format 0.0.4.
//
// Before 0.23, any application/openmetrics-text entry selects OpenMetrics
// (labelled version 0.0.1), anything else the text format 0.0.4.
//
// Protobuf is never offered: Python has no protobuf encoder.
func negotiate(accept string, client pyclient.Version) answer {
	text004 := answer{render.Exposition{Escaping: model.UnderscoreEscaping, Client: client}, contentText004}
	for entry := range strings.SplitSeq(accept, ",") {
		toks := strings.Split(entry, ";")
		switch strings.TrimSpace(toks[0]) {
		case "application/openmetrics-text":
			if !client.TextV1() {
				return answer{render.Exposition{OpenMetrics: true, Escaping: model.UnderscoreEscaping, Client: client}, contentOM001}
			}
			version := param(toks, "version")
			if version == "" {
				return answer{render.Exposition{OpenMetrics: true, Escaping: model.UnderscoreEscaping, Client: client}, contentOM100}
			}
			if atLeast1(version) {
				name, scheme := escaping(toks)
				return answer{render.Exposition{OpenMetrics: true, Escaping: scheme, Client: client},
					"application/openmetrics-text; version=" + version + "; charset=utf-8; escaping=" + name}
			}
		case "text/plain":
			if !client.TextV1() {
				continue
			}
			if version := param(toks, "version"); version != "" && atLeast1(version) {
				name, scheme := escaping(toks)
				return answer{render.Exposition{Escaping: scheme, Client: client}, contentText100 + "; escaping=" + name}
			}
		}
	}
	return text004
}

// param returns the value of the first key=value token named key, as
// Python's _get_version and _get_escaping read them (the token is
// stripped, the key and value are not).
func param(toks []string, key string) string {
	for _, tok := range toks[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(tok), "=")
		if ok && k == key {
			return v
		}
	}
	return ""
}

// escaping returns the escaping parameter's name and scheme, underscores
// when it is missing or unknown.
func escaping(toks []string) (string, model.EscapingScheme) {
	switch param(toks, "escaping") {
	case model.AllowUTF8:
		return model.AllowUTF8, model.NoEscaping
	case model.EscapeDots:
		return model.EscapeDots, model.DotsEscaping
	case model.EscapeValues:
		return model.EscapeValues, model.ValueEncodingEscaping
	}
	return model.EscapeUnderscores, model.UnderscoreEscaping
}

// atLeast1 reports whether a dotted version is 1.0.0 or more, comparing
// numerically part by part as Python's parse_version tuples do. A part
// that is not a number makes it false (Python fails the request).
func atLeast1(version string) bool {
	var parts []int
	for p := range strings.SplitSeq(version, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		parts = append(parts, n)
	}
	return slices.Compare(parts, []int{1, 0, 0}) >= 0
}

// nameFilter returns the sample names a request's ?name[]= parameters ask
// for, as Python's parse_qs reads them (empty values dropped), sorted and
// without repeats; nil when there are none.
func nameFilter(q url.Values) []string {
	var names []string
	for _, n := range q["name[]"] {
		if n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// restrict keeps the samples whose name is in names, and the families
// that keep any, as Python's restricted_registry does (a family keeps its
// name, type and help). Before 0.25 the multiprocess collector declares no
// names and nothing is kept.
func restrict(fams []aggregate.Family, names []string, client pyclient.Version) []aggregate.Family {
	if !client.NameFilterMultiprocess() {
		return nil
	}
	var out []aggregate.Family
	for i := range fams {
		f := fams[i]
		var kept []aggregate.Sample
		for _, s := range f.Samples {
			if _, ok := slices.BinarySearch(names, s.Name); ok {
				kept = append(kept, s)
			}
		}
		if len(kept) > 0 {
			f.Samples = kept
			out = append(out, f)
		}
	}
	return out
}

// restrictOwn keeps promstore's own families any of whose sample names is
// in names (their samples whole).
func restrictOwn(mfs []*dto.MetricFamily, names []string) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		for _, suffix := range []string{"", "_total", "_bucket", "_count", "_sum"} {
			if _, ok := slices.BinarySearch(names, mf.GetName()+suffix); ok {
				out = append(out, mf)
				break
			}
		}
	}
	return out
}
