package api

import (
	"crypto/sha256"
	"sync"
	"time"
)

// tokenCacheSize bounds the verified-token cache; when full it is emptied
// (tokens live at most five minutes, so a full cache is mostly stale).
const tokenCacheSize = 10000

// tokenCache remembers principals of tokens that verified, until the
// tokens expire, so that a client reusing its access token does not pay
// for parsing and a signature check on every request. Keys are SHA-256
// hashes: the cache holds no token.
type tokenCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]Principal
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
	if c.m == nil || len(c.m) >= tokenCacheSize {
		c.m = make(map[[sha256.Size]byte]Principal)
	}
	c.m[k] = p
}
