package redisstore

import "testing"

func TestMetricKeyPrefix(t *testing.T) {
	tests := []struct {
		key, prefix string
		ok          bool
	}{
		{"gunicorn:counter:4100:metric:0123", "gunicorn", true},
		{"my:app:gauge_livesum:7:metric:ab", "my:app", true},
		{"my:app:gauge:7:metric:ab", "my:app", true}, // modeless gauge
		{"x:gauge_bogus:7:metric:ab", "", false},
		{"x:session:7:metric:ab", "", false},
		{"counter:7:metric:ab", "", false}, // no prefix
		{"x:counter::metric:ab", "", false},
		{"x:counter:7:metric:", "", false},
		{"x:counter:7:meta:ab", "", false},
	}
	for _, tc := range tests {
		p, ok := metricKeyPrefix(tc.key)
		if p != tc.prefix || ok != tc.ok {
			t.Errorf("metricKeyPrefix(%q) = %q, %v; want %q, %v", tc.key, p, ok, tc.prefix, tc.ok)
		}
	}
}
