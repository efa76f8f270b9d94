//go:build unix

package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// TestStalledServerSaysTimeout pauses a real server (SIGSTOP: it
// accepts connections and answers nothing, as one stalled by a long
// command): the error names the node and says it did not answer within
// the --redis-timeout, not a bare "i/o timeout".
func TestStalledServerSaysTimeout(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) (urls []string, cluster bool, stalled *testenv.RedisServer)
	}{
		{"standalone", func(t *testing.T) ([]string, bool, *testenv.RedisServer) {
			srv := testenv.StartRedis(t)
			return []string{srv.URL()}, false, srv
		}},
		{"cluster master", func(t *testing.T) ([]string, bool, *testenv.RedisServer) {
			rc := testenv.StartCluster(t)
			return rc.URLs()[:1], true, rc.Nodes[2]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			urls, cluster, stalled := tc.start(t)
			stalled.Pause()
			t.Cleanup(stalled.Resume)
			_, err := Open(context.Background(), Config{URLs: urls, Cluster: cluster, DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
			for _, want := range []string{"redis " + stalled.Addr() + ": ", "no answer within 300ms, the --redis-timeout"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("open with %s stalled: %v; want it to say %q", stalled.Addr(), err, want)
				}
			}
		})
	}
}
