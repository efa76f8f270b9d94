package redisstore

import (
	"sync"
	"sync/atomic"

	"github.com/promstore/promstore/internal/store"
)

// keyCache maps original_key texts to their parsed keys, so that the
// samples of one text share one *store.Key (every pid holds the same
// texts, and the aggregator works per pointer and Key.ID), each text is
// parsed and hashed once, and keys keep their IDs from scan to scan.
// Lookups come from the concurrent fetchers of one scan.
type keyCache struct {
	mu       sync.Mutex
	cur, old map[string]*cachedKey
	ids      *atomic.Uint32
}

// cachedKey is a parsed key and the MD5 of its text, which the exporter
// uses in the key names.
type cachedKey struct {
	key *store.Key
	md5 string
}

// keyCaches keeps the key cache of a Store's latest complete scan.
type keyCaches struct {
	mu   sync.Mutex
	keys map[string]*cachedKey
	ids  atomic.Uint32
}

// take starts a scan's cache from the previous scan's keys. A concurrent
// scan starts empty (its keys get new IDs).
func (c *keyCaches) take() *keyCache {
	c.mu.Lock()
	old := c.keys
	c.keys = nil
	c.mu.Unlock()
	return &keyCache{cur: make(map[string]*cachedKey, len(old)), old: old, ids: &c.ids}
}

// put keeps the keys of a scan for the next one: the keys it met when it
// completed, else the ones it started with.
func (c *keyCaches) put(kc *keyCache, complete bool) {
	keys := kc.old
	if complete {
		keys = kc.cur
	}
	c.mu.Lock()
	c.keys = keys
	c.mu.Unlock()
}

// lookup returns the key for text if text hashes to md5. It reports why
// not otherwise: the text does not hash to md5 (mismatch) or does not
// parse (err).
func (c *keyCache) lookup(text, md5 string) (key *store.Key, mismatch bool, err error) {
	c.mu.Lock()
	ck, ok := c.cur[text]
	if !ok {
		if ck, ok = c.old[text]; ok {
			c.cur[text] = ck
		}
	}
	c.mu.Unlock()
	if ok {
		if ck.md5 != md5 {
			return nil, true, nil
		}
		return ck.key, false, nil
	}
	sum := md5hex(text)
	if sum != md5 {
		return nil, true, nil
	}
	k, err := store.ParseKey(text)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ck, ok := c.cur[text]; ok { // parsed meanwhile by another fetcher
		return ck.key, false, nil
	}
	k.ID = c.ids.Add(1)
	c.cur[text] = &cachedKey{key: k, md5: sum}
	return k, false, nil
}
