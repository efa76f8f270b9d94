package testenv

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartRedisRestart(t *testing.T) {
	ctx := context.Background()
	s := StartRedis(t, RedisOptions{Password: "s3cret"})
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Errorf("key survived a restart without persistence")
	}
	if !strings.Contains(s.URL(), s.Addr()) {
		t.Errorf("URL %q lacks %s", s.URL(), s.Addr())
	}
}

func TestStartCluster(t *testing.T) {
	ctx := context.Background()
	rc := StartCluster(t)
	c := rc.Client()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	var mu sync.Mutex
	sizes := map[string]int64{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		size, err := n.DBSize(ctx).Result()
		mu.Lock()
		sizes[n.Options().Addr] = size
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 {
		t.Fatalf("masters = %v, want 3", sizes)
	}
	var total int64
	for _, n := range sizes {
		total += n
	}
	if total != 6 {
		t.Errorf("keys over masters = %v, want 6 in total", sizes)
	}
}
