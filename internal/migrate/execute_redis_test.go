package migrate

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"testing"

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
