package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// LoadRedisJSONL HSETs every line of a fixture's store.jsonl ({"key": ...,
// "hash": {field: value}}) into the Redis c talks to, each key passed
// through rename when it is not nil, and returns the number of keys.
func LoadRedisJSONL(t testing.TB, c redis.Cmdable, path string, rename func(string) string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	pipe := c.Pipeline()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var line struct {
			Key  string            `json:"key"`
			Hash map[string]string `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s line %d: %v", path, n, err)
		}
		key := line.Key
		if rename != nil {
			key = rename(key)
		}
		pipe.HSet(ctx, key, line.Hash)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return n
}
