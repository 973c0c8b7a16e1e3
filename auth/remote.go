package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Caching of JWK Sets fetched from URLs.
const (
	// jwksTTL is how long a fetched JWK Set is used without refetching.
	jwksTTL = 5 * time.Minute
	// jwksMinRefresh is the shortest interval between two fetches of one
	// URL, even when a token names a kid the cached set lacks.
	jwksMinRefresh = 30 * time.Second
)

// jwksFetcher fetches JWK Sets from URLs registered by an operator (an
// organisation's JWKS URL, a patient IdP's): never from a URL a token
// names. Sets are cached; an unknown kid triggers a refetch at most every
// jwksMinRefresh; when a refetch fails the last good set stays in use.
type jwksFetcher struct {
	client *http.Client
	now    func() time.Time
	mu     sync.Mutex // guards cache
	cache  map[string]*cachedJWKS
}

type cachedJWKS struct {
	mu        sync.Mutex // held while fetching: one fetch per URL at a time
	set       *KeySet
	fetched   time.Time
	attempted time.Time
}

func newJWKSFetcher(client *http.Client, now func() time.Time) *jwksFetcher {
	return &jwksFetcher{client: client, now: now, cache: map[string]*cachedJWKS{}}
}

// keys returns the set at url, fetching it when it is not cached, stale,
// or lacks kid (rate-limited).
func (f *jwksFetcher) keys(ctx context.Context, url string, p keyPolicy, kid string) (*KeySet, error) {
	cacheKey := p.rsaDefault + " " + url
	f.mu.Lock()
	c := f.cache[cacheKey]
	if c == nil {
		c = &cachedJWKS{}
		f.cache[cacheKey] = c
	}
	f.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	now := f.now()
	tried := !c.attempted.IsZero() && now.Sub(c.attempted) < jwksMinRefresh
	if c.set != nil {
		_, has := c.set.lookup(kid)
		fresh := now.Sub(c.fetched) < jwksTTL
		if (fresh && has) || tried {
			return c.set, nil
		}
	} else if tried {
		return nil, fmt.Errorf("%w: JWKS at %s unavailable (retry later)", ErrInvalidKey, url)
	}
	c.attempted = now
	set, err := f.fetch(ctx, url, p)
	if err != nil {
		if c.set != nil {
			return c.set, nil // keep using the last good set
		}
		return nil, err
	}
	c.set, c.fetched = set, now
	return set, nil
}

func (f *jwksFetcher) fetch(ctx context.Context, url string, p keyPolicy) (*KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS URL: %v", ErrInvalidKey, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if len(b) > MaxJWKSSize {
		return nil, errors.New("fetch JWKS: response too large")
	}
	return parseJWKS(b, p)
}
