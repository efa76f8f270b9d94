// Package pyclient names the prometheus_client (Python) release whose
// output promstore reproduces, and what differs between releases: how
// floats are spelled, which content types make_wsgi_app negotiates and
// whether its ?name[]= filter works with the multiprocess collector.
package pyclient

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// Version is a prometheus_client release 0.Minor. The zero value is the
// newest release promstore knows (Latest).
type Version struct{ minor int }

// Oldest and Latest bound the releases promstore knows the output of.
var (
	Oldest = Version{16}
	Latest = Version{26}
)

// m is the release's minor number, the zero Version's being Latest's.
func (v Version) m() int {
	if v.minor == 0 {
		return Latest.minor
	}
	return v.minor
}

// Known lists the releases whose output differs from the one before in a
// way promstore reproduces, oldest first; completion offers them.
var Known = []string{"0.16", "0.18", "0.23", "0.25", "0.26"}

// Parse reads a release as "0.25", "0.25.0" or "latest". Releases from
// Oldest to Latest are accepted.
func Parse(s string) (Version, error) {
	if s == "latest" || s == "" {
		return Latest, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "0" {
		return Version{}, fmt.Errorf("python client version %q: want 0.MINOR such as 0.25, or latest", s)
	}
	for _, p := range parts[1:] {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return Version{}, fmt.Errorf("python client version %q: want 0.MINOR such as 0.25, or latest", s)
		}
	}
	minor, _ := strconv.Atoi(parts[1])
	v := Version{minor}
	if minor < Oldest.minor || minor > Latest.minor {
		return Version{}, fmt.Errorf("python client version %q: promstore knows the output of %s to %s", s, Oldest, Latest)
	}
	return v, nil
}

// String returns "0.Minor".
func (v Version) String() string { return "0." + strconv.Itoa(v.m()) }

// FloatToGoString formats f as this release's floatToGoString: since 0.26
// exponents of 10 and more have no leading zero ("1e+10"), before they
// had one ("1e+010").
func (v Version) FloatToGoString(f float64) string {
	return store.FloatToGoStringFor(f, v.PaddedExponent())
}

// PaddedExponent reports whether floatToGoString writes exponents with
// at least two digits and no more ("1e+10", client_python PR #1190,
// 0.26) rather than a literal 0 before them ("1e+010").
func (v Version) PaddedExponent() bool { return v.m() >= 26 }

// TextV1 reports whether make_wsgi_app negotiates the text format 1.0.0
// and the escaping parameter, and labels OpenMetrics 1.0.0 as such (0.23
// and later); before, it offered text 0.0.4 and OpenMetrics 0.0.1 only.
func (v Version) TextV1() bool { return v.m() >= 23 }

// NameFilterMultiprocess reports whether ?name[]= selects samples from a
// registry holding a MultiProcessCollector (0.25 and later). Before, the
// collector declares no names, so any name[] filter selects nothing and
// the answer is an empty exposition.
func (v Version) NameFilterMultiprocess() bool { return v.m() >= 25 }

// LegacyLayout is the newest release that reads the 8-byte layout (a
// value, no timestamp): a shard in it is read by releases before 0.18
// only, so with their gauge modes (GaugeMode).
var LegacyLayout = Version{17}

// ShardGaugeMode is the gauge mode that the releases reading a shard of
// this layout (8 or 16 bytes an entry; 0 for Redis) apply to its mode:
// its own, but mode all for a mostrecent mode in the 8-byte layout, which
// only releases before 0.18 read. What cleanup does with a dead process's
// shard, and what analyze expects of it, follow this.
func ShardGaugeMode(mode string, layout int) string {
	if layout == 8 {
		return LegacyLayout.GaugeMode(mode)
	}
	return mode
}

// GaugeMode is the gauge multiprocess mode this release's collector
// applies to a shard of mode mode: mode itself, except that releases
// before 0.18, which have no mostrecent modes, keep a mostrecent or
// livemostrecent gauge one sample per process, as mode all (their
// collector's branch for every mode it does not know).
func (v Version) GaugeMode(mode string) string {
	if v.m() < 18 && (mode == "mostrecent" || mode == "livemostrecent") {
		return "all"
	}
	return mode
}
