package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The read gate of a Redis store is one hash, <prefix>:promstore:readers
// (one key, so one Cluster slot): a field per promstore read in progress,
// holding the Redis server time (ms) at which it counts as abandoned,
// and the field "gate", set while a cleanup saves or removes its journal
// (new reads wait until it is gone). Expiry times keep a killed reader
// or cleanup from blocking the others for longer than its TTL.
const readersName = "readers"

// gateField is the field of the hash a waiting cleanup sets.
const gateField = "gate"

// serverNow is the Lua prologue giving the server time in ms.
const serverNow = `pcall(redis.replicate_commands)
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// enterScript registers a reader unless a cleanup holds the gate.
var enterScript = redis.NewScript(serverNow + `
local g = redis.call("HGET", KEYS[1], "gate")
if g and tonumber(g) > now then return 0 end
redis.call("HSET", KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
if redis.call("PTTL", KEYS[1]) < 2 * tonumber(ARGV[2]) then
  redis.call("PEXPIRE", KEYS[1], 2 * tonumber(ARGV[2]))
end
return 1`)

// closeScript sets the gate and returns the number of readers still in
// progress (dropping abandoned ones).
var closeScript = redis.NewScript(serverNow + `
redis.call("HSET", KEYS[1], "gate", now + tonumber(ARGV[1]))
if redis.call("PTTL", KEYS[1]) < 2 * tonumber(ARGV[1]) then
  redis.call("PEXPIRE", KEYS[1], 2 * tonumber(ARGV[1]))
end
local all = redis.call("HGETALL", KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i] ~= "gate" then
    if tonumber(all[i+1]) > now then n = n + 1 else redis.call("HDEL", KEYS[1], all[i]) end
  end
end
return n`)

// EnterRead registers the read id for at most ttl. It reports false when
// a cleanup holds the gate: the caller waits and tries again.
func (s *Store) EnterRead(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	k := s.auxKey(readersName)
	n, err := enterScript.Run(ctx, s.client, []string{k}, id, ttl.Milliseconds()).Int()
	if err != nil {
		if Unreachable(err) {
			// The server is down: that, not this first command of a
			// read, is what a reader needs to be told.
			return false, s.wrap(err)
		}
		return false, fmt.Errorf("register read in %s: %w", k, s.wrap(err))
	}
	return n == 1, nil
}

// LeaveRead removes the read id.
func (s *Store) LeaveRead(ctx context.Context, id string) error {
	k := s.auxKey(readersName)
	if err := s.client.HDel(ctx, k, id).Err(); err != nil {
		return fmt.Errorf("unregister read in %s: %w", k, s.wrap(err))
	}
	return nil
}

// CloseGate sets the gate for at most ttl (keeping new reads out) and
// returns how many reads are still in progress. Call it again until that
// is zero, then OpenGate when done.
func (s *Store) CloseGate(ctx context.Context, ttl time.Duration) (int, error) {
	k := s.auxKey(readersName)
	n, err := closeScript.Run(ctx, s.client, []string{k}, ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("close the read gate %s: %w", k, s.wrap(err))
	}
	return n, nil
}

// OpenGate lets reads in again.
func (s *Store) OpenGate(ctx context.Context) error {
	k := s.auxKey(readersName)
	if err := s.client.HDel(ctx, k, gateField).Err(); err != nil {
		return fmt.Errorf("open the read gate %s: %w", k, s.wrap(err))
	}
	return nil
}
