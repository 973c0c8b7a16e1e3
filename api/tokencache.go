package api

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCacheSize bounds the verified-token cache; when full of unexpired
// tokens it is emptied.
const tokenCacheSize = 10000

// tokenCacheSweep: every this many insertions the expired entries are
// dropped, so the cache holds the tokens in use, not every token seen
// until the bound is reached.
const tokenCacheSweep = 256

// tokenCache remembers principals of tokens that verified, until the
// tokens expire, so that a client reusing its access token does not pay
// for parsing and a signature check on every request. Keys are SHA-256
// hashes: the cache holds no token.
type tokenCache struct {
	mu   sync.Mutex
	m    map[[sha256.Size]byte]Principal
	puts int // insertions since the last sweep
}

func (c *tokenCache) get(token string, now time.Time) (Principal, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[k]
	if !ok {
		return Principal{}, false
	}
	if !now.Before(p.Expires) {
		delete(c.m, k)
		return Principal{}, false
	}
	return p, true
}

func (c *tokenCache) put(token string, p Principal, now time.Time) {
	if p.Expires.IsZero() || !now.Before(p.Expires) {
		return
	}
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]Principal)
	}
	if c.puts++; c.puts >= tokenCacheSweep || len(c.m) >= tokenCacheSize {
		c.puts = 0
		for k, q := range c.m {
			if !now.Before(q.Expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= tokenCacheSize {
			c.m = make(map[[sha256.Size]byte]Principal)
		}
	}
	c.m[k] = p
}

// len is the number of cached tokens (tests).
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
