package api

import (
	"fmt"
	"testing"
	"time"
)

func TestTokenCache(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var c tokenCache
	p := Principal{Org: "hosp-a", Expires: now.Add(time.Minute)}
	c.put("tok", p, now)
	if got, ok := c.get("tok", now.Add(59*time.Second)); !ok || got.Org != "hosp-a" {
		t.Errorf("get before expiry = %+v, %v", got, ok)
	}
	if _, ok := c.get("other", now); ok {
		t.Error("an unknown token was found")
	}
	if _, ok := c.get("tok", now.Add(time.Minute)); ok {
		t.Error("an expired token was still cached")
	}
	c.put("stale", Principal{Org: "x", Expires: now}, now)
	if _, ok := c.get("stale", now.Add(-time.Second)); ok {
		t.Error("a token that had already expired was cached")
	}
	c.put("noexp", Principal{Org: "x"}, now)
	if _, ok := c.get("noexp", now); ok {
		t.Error("a principal without expiry was cached")
	}
	for i := range tokenCacheSize + 1 {
		c.put(string(rune(i))+"k", Principal{Org: "x", Expires: now.Add(time.Hour)}, now)
	}
	if len(c.m) > tokenCacheSize {
		t.Errorf("cache grew to %d entries, bound %d", len(c.m), tokenCacheSize)
	}
}

// TestTokenCacheForgetsExpired: a stream of short-lived tokens (each
// used once, as a client minting a token per request does) keeps only
// the unexpired ones, not every token seen up to the bound.
func TestTokenCacheForgetsExpired(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var c tokenCache
	const ttl = time.Minute
	for i := range 5000 {
		at := now.Add(time.Duration(i) * 100 * time.Millisecond) // 10 a second
		c.put(fmt.Sprintf("tok-%d", i), Principal{Org: "x", Expires: at.Add(ttl)}, at)
	}
	// 600 tokens are unexpired at the end (one minute at 10 a second),
	// plus those inserted since the last sweep.
	if got, max := c.len(), 600+tokenCacheSweep; got > max {
		t.Errorf("%d cached tokens after 5000 one-minute tokens over 500 s, want at most %d", got, max)
	}
	if _, ok := c.get("tok-4999", now.Add(4999*100*time.Millisecond)); !ok {
		t.Error("the newest token is not cached")
	}
}
