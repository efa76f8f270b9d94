package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// TestLockAuxTakeover: a lock whose holder is a dead process of this host
// and pid namespace (a killed cleanup) is taken over at once; a live
// holder's, another host's and one of an unknown owner are not.
func TestLockAuxTakeover(t *testing.T) {
	if lockOwner() == "" || strings.Split(lockOwner(), "|")[1] == "" {
		testenv.Unavailable(t, "no pid namespace in /proc here")
	}
	srv := testenv.StartRedis(t)
	st := openStore(t, Config{URLs: []string{srv.URL()}})
	ctx := context.Background()
	key := st.auxKey("test-lock")
	f := strings.Split(lockOwner(), "|")
	tests := []struct {
		name, held string
		take       bool
	}{
		{"dead holder here", f[0] + "|" + f[1] + "|" + testenv.DeadPID(t) + "|x", true},
		{"live holder here", f[0] + "|" + f[1] + "|" + testenv.LivePID(t) + "|x", false},
		{"dead pid, another host", "elsewhere|" + f[1] + "|" + testenv.DeadPID(t) + "|x", false},
		{"dead pid, another pid namespace", f[0] + "|pid:[1]|" + testenv.DeadPID(t) + "|x", false},
		{"old token", "1a2b3c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.Client().Set(ctx, key, tt.held, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			unlock, err := st.LockAux(ctx, "test-lock", time.Minute)
			if tt.take != (err == nil) {
				t.Fatalf("take over %q: err = %v, want taken %v", tt.held, err, tt.take)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "held by another run") {
					t.Errorf("err = %v", err)
				}
				return
			}
			if v := srv.Client().Get(ctx, key).Val(); !strings.HasPrefix(v, lockOwner()+"|") {
				t.Errorf("lock value after the takeover: %q", v)
			}
			if err := unlock(); err != nil {
				t.Fatalf("unlock: %v", err)
			}
			if n := srv.Client().Exists(ctx, key).Val(); n != 0 {
				t.Error("unlock left the lock")
			}
		})
	}
}
