package migrate

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// TestExecuteIntoRedisCreatedAt: into Redis, the samples the plan found
// missing are written as new (created_at set) and a conflicting sample
// that is overwritten keeps the created_at it had.
func TestExecuteIntoRedisCreatedAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	dst, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	write(t, dst, counterID, kReq, 1.0)
	c := srv.Client()
	meta := func(text string) string {
		sum := md5.Sum([]byte(text))
		return "gunicorn:counter:7:meta:" + hex.EncodeToString(sum[:])
	}
	if err := c.HSet(ctx, meta(kReq), "created_at", "1.5").Err(); err != nil {
		t.Fatal(err)
	}
	p, err := run(t, smallSource(t), dst, Options{OnConflict: Overwrite})
	if err != nil {
		t.Fatal(err)
	}
	if p.New != 2 || p.Conflicts != 1 {
		t.Fatalf("plan: %d new, %d conflicts; want 2 and 1", p.New, p.Conflicts)
	}
	if got := values(t, dst, counterID); got[kReq] != 5 || got[kErr] != 2 {
		t.Errorf("target holds %v", got)
	}
	if got := c.HGet(ctx, meta(kReq), "created_at").Val(); got != "1.5" {
		t.Errorf("overwritten sample: created_at %q, want 1.5 kept", got)
	}
	if got := c.HGet(ctx, meta(kErr), "created_at").Val(); got == "" || got == "1.5" {
		t.Errorf("new sample: created_at %q", got)
	}
}

// TestExecuteIntoRedisKeepsUpdatedAt: updated_at is the time of the last
// write (cleanup's --stale-after and --min-idle judge a shard by it), so a
// migrated sample gets its source shard's mtime, not the migration's
// time: new samples, overwritten ones and a mix in one shard alike.
func TestExecuteIntoRedisKeepsUpdatedAt(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	c := srv.Client()
	metric := func(text string) string {
		sum := md5.Sum([]byte(text))
		return "gunicorn:counter:7:metric:" + hex.EncodeToString(sum[:])
	}
	mtime := time.Date(2026, 3, 1, 12, 30, 15, 250000000, time.UTC)
	tests := []struct {
		name   string
		target []any // target samples before the migration
	}{
		{"new shard", nil},
		{"overwritten shard", []any{kReq, 1.0, kErr, 1.0}},
		{"new and overwritten samples", []any{kReq, 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			dst, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if tt.target != nil {
				write(t, dst, counterID, tt.target...)
			}
			dir := t.TempDir()
			src := open(t, dir, 16)
			write(t, src, counterID, kReq, 5.0, kErr, 2.0)
			if err := os.Chtimes(filepath.Join(dir, "counter_7.db"), mtime, mtime); err != nil {
				t.Fatal(err)
			}
			if _, err := run(t, src, dst, Options{OnConflict: Overwrite}); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{kReq, kErr} {
				got, err := c.HGet(ctx, metric(k), "updated_at").Float64()
				if err != nil {
					t.Fatalf("updated_at of %s: %v", k, err)
				}
				if want := float64(mtime.UnixMicro()) / 1e6; got != want {
					t.Errorf("%s: updated_at %v, want the source shard's mtime %v", k, got, want)
				}
			}
		})
	}
}
