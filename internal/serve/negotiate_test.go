package serve

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/promstore/promstore/internal/aggregate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// Accept headers real scrapers send.
const (
	// Prometheus 2.x (2.42 sends exactly this; checked by the Prometheus
	// integration test).
	acceptProm2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	// Prometheus 3.x with its default scrape_protocols and UTF-8 names.
	acceptProm3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
	// Prometheus 3.x with metric_name_validation_scheme: legacy.
	acceptProm3Legacy = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
	// Prometheus 3.x with native histograms: protobuf first.
	acceptProm3Proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
	acceptCurl       = "*/*"
)

// acceptTable is the README's table of Accept headers and answers: for
// each header, what make_wsgi_app of the newest client (0.23 and later
// answer the same) and of 0.16 (up to 0.22) send back.
var acceptTable = []struct {
	name, accept string
	latest, v016 string // Content-Type
	om           bool   // OpenMetrics (for both releases)
	escaping     model.EscapingScheme
}{
	{"Prometheus 2.x", acceptProm2, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores", contentOM001, true, model.UnderscoreEscaping},
	{"Prometheus 3.x", acceptProm3, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8", contentOM001, true, model.NoEscaping},
	{"Prometheus 3.x legacy names", acceptProm3Legacy, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores", contentOM001, true, model.UnderscoreEscaping},
	{"Prometheus 3.x protobuf first", acceptProm3Proto, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8", contentOM001, true, model.NoEscaping},
	{"curl", acceptCurl, contentText004, contentText004, false, model.UnderscoreEscaping},
	{"no Accept", "", contentText004, contentText004, false, model.UnderscoreEscaping},
	{"OpenMetrics, no version", "application/openmetrics-text", contentOM100, contentOM001, true, model.UnderscoreEscaping},
	{"OpenMetrics, unknown escaping", "application/openmetrics-text; version=1.0.0; escaping=bogus", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores", contentOM001, true, model.UnderscoreEscaping},
	{"OpenMetrics 1.0.0, dots", "application/openmetrics-text;version=1.0.0;escaping=dots", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots", contentOM001, true, model.DotsEscaping},
	{"OpenMetrics 1.0.0, values", "application/openmetrics-text;version=1.0.0;escaping=values", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=values", contentOM001, true, model.ValueEncodingEscaping},
	{"text 1.0.0, q ignored", "text/plain;version=0.0.4;q=1,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.1", contentText100 + "; escaping=allow-utf-8", contentText004, false, model.NoEscaping},
	{"text 1.0.0 without escaping", "text/plain; version=1.0.0", contentText100 + "; escaping=underscores", contentText004, false, model.UnderscoreEscaping},
	{"text 0.0.4", "text/plain;version=0.0.4", contentText004, contentText004, false, model.UnderscoreEscaping},
	{"OpenMetrics 0.0.1 only", "application/openmetrics-text;version=0.0.1", contentText004, contentOM001, false, model.UnderscoreEscaping},
	{"protobuf only", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", contentText004, contentText004, false, model.UnderscoreEscaping},
	{"text 0.0.4 before OpenMetrics", "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores", contentOM001, true, model.UnderscoreEscaping},
}

// TestNegotiateTable checks negotiate against the table for the newest
// release, 0.25 (the same answers) and 0.16; the 0.16 column is also
// checked against the real make_wsgi_app in TestMatchesPythonApp.
func TestNegotiateTable(t *testing.T) {
	v016, _ := pyclient.Parse("0.16")
	v025, _ := pyclient.Parse("0.25")
	for _, tt := range acceptTable {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				client pyclient.Version
				ct     string
				om     bool
			}{{pyclient.Latest, tt.latest, tt.om}, {v025, tt.latest, tt.om}, {v016, tt.v016, strings.HasPrefix(tt.v016, "application/openmetrics-text")}} {
				got := negotiate(tt.accept, c.client)
				if got.contentType != c.ct {
					t.Errorf("%s: Content-Type %q, want %q", c.client, got.contentType, c.ct)
				}
				if got.expo.OpenMetrics != c.om || got.expo.Client != c.client {
					t.Errorf("%s: OpenMetrics %v client %s, want %v", c.client, got.expo.OpenMetrics, got.expo.Client, c.om)
				}
				wantEsc := tt.escaping
				if !c.client.TextV1() {
					wantEsc = model.UnderscoreEscaping
				}
				if got.expo.Escaping != wantEsc {
					t.Errorf("%s: escaping %v, want %v", c.client, got.expo.Escaping, wantEsc)
				}
			}
		})
	}
}

// fixture026 opens a copy of the python-0.26-files store (bucket bounds
// and values from 1e9 to 1e22).
func fixture026(t *testing.T) *filestore.Store {
	t.Helper()
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.26-files", "store"))
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAcceptTableOverHTTP serves the 0.26 fixture as the newest client
// and as 0.25 and 0.16 would: every Accept header of the table gets the
// table's Content-Type and the body render.Exposition writes for it, with
// floats spelled as that release spells them.
func TestAcceptTableOverHTTP(t *testing.T) {
	st := fixture026(t)
	for _, client := range []string{"latest", "0.25", "0.16"} {
		v, _ := pyclient.Parse(client)
		agg := aggregate.NewFor(v)
		if err := st.Scan(context.Background(), agg.Add); err != nil {
			t.Fatal(err)
		}
		fams := agg.Families()
		srv := start(t, Options{Store: st, PythonClient: v})
		for _, tt := range acceptTable {
			t.Run(client+"/"+tt.name, func(t *testing.T) {
				r := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": tt.accept})
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				want := negotiate(tt.accept, v)
				if ct := r.header.Get("Content-Type"); ct != want.contentType {
					t.Errorf("Content-Type %q, want %q", ct, want.contentType)
				}
				var b bytes.Buffer
				if err := want.expo.Write(&b, fams); err != nil {
					t.Fatal(err)
				}
				if r.body != b.String() {
					t.Errorf("body differs from render.Exposition's")
				}
				le := `le="1e+10"`
				if !v.PaddedExponent() {
					le = `le="1e+010"`
				}
				if !strings.Contains(r.body, le) || !strings.Contains(r.body, "2.8942530991690136"+le[5:len(le)-1]) {
					t.Errorf("body lacks %s or a value spelled alike", le)
				}
			})
		}
	}
}

// TestNameFilter: ?name[]= keeps the samples of the names given, on every
// format, as restricted_registry does from 0.25 on; 0.16's answer is an
// empty exposition.
func TestNameFilter(t *testing.T) {
	st := fixture026(t)
	v016, _ := pyclient.Parse("0.16")
	tests := []struct {
		name, query string
		want        []string // sample names in the body (latest)
	}{
		{"one name", "name[]=heap_bytes", []string{"heap_bytes"}},
		{"counter sample name", "name[]=transfer_bytes_total", []string{"transfer_bytes_total"}},
		{"counter family name selects nothing", "name[]=transfer_bytes", nil},
		{"repeated", "name[]=heap_bytes&name[]=upload_bytes_count&name[]=heap_bytes", []string{"heap_bytes", "upload_bytes_count"}},
		{"histogram buckets only", "name[]=object_size_bytes_bucket", []string{"object_size_bytes_bucket"}},
		{"empty value ignored", "name[]=", []string{"object_size_bytes_sum", "object_size_bytes_bucket", "object_size_bytes_count", "heap_bytes", "disk_free_bytes", "transfer_bytes_total", "upload_bytes_count", "upload_bytes_sum"}},
		{"unknown", "name[]=nope", nil},
	}
	for _, client := range []pyclient.Version{pyclient.Latest, v016} {
		srv := start(t, Options{Store: st, PythonClient: client})
		for _, tt := range tests {
			for _, accept := range []string{acceptCurl, acceptProm2, acceptProm3} {
				t.Run(client.String()+"/"+tt.name+"/"+accept[:min(10, len(accept))], func(t *testing.T) {
					r := get(t, nil, srv.url+"/metrics?"+tt.query, map[string]string{"Accept": accept})
					if r.status != 200 {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
					want := tt.want
					if !client.NameFilterMultiprocess() {
						q, _ := url.ParseQuery(tt.query)
						if len(nameFilter(q)) > 0 {
							want = nil
						}
					}
					seen := map[string]bool{}
					for _, l := range strings.Split(r.body, "\n") {
						if l == "" || strings.HasPrefix(l, "#") {
							continue
						}
						n, _, _ := strings.Cut(l, "{")
						n, _, _ = strings.Cut(n, " ")
						seen[n] = true
					}
					if len(seen) != len(want) {
						t.Errorf("sample names %v, want %v", seen, want)
					}
					for _, n := range want {
						if !seen[n] {
							t.Errorf("sample names %v lack %s", seen, n)
						}
					}
					if strings.HasPrefix(r.header.Get("Content-Type"), "application/openmetrics-text") && !strings.HasSuffix(r.body, "# EOF\n") {
						t.Errorf("OpenMetrics body without # EOF")
					}
				})
			}
		}
	}
}

// TestTelemetryVaries: the telemetry path's answer depends on Accept (the
// format) and Accept-Encoding (gzip), and says so in Vary, as promhttp
// does for /-/metrics, so that an HTTP cache between a scraper and
// promstore never hands OpenMetrics to a scraper that asked for text.
func TestTelemetryVaries(t *testing.T) {
	_, st := sampleStore(t)
	srv := start(t, Options{Store: st})
	r := get(t, nil, srv.url+"/metrics", map[string]string{"Accept": "application/openmetrics-text"})
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	vary := strings.Join(r.header.Values("Vary"), ",")
	for _, want := range []string{"Accept", "Accept-Encoding"} {
		if !slices.Contains(strings.Split(strings.ReplaceAll(vary, " ", ""), ","), want) {
			t.Errorf("Vary %q does not name %s", vary, want)
		}
	}
}
