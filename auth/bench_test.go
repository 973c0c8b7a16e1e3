package auth_test

import (
	"testing"
)

// BenchmarkAuthenticate measures the verification of a gateway access
// token (ES256): the per-request cost of authentication.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b)
	w := f.world(b, nil)
	tok := w.exchange(b, f.a, "").Token
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.authn.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchange measures a whole token exchange (ES256 assertion
// verified, in-memory replay cache, access token signed), assertion
// signing excluded.
func BenchmarkExchange(b *testing.B) {
	f := newFixture(b)
	w := f.world(b, nil)
	toks := make([]string, 0, 1024)
	for range cap(toks) {
		toks = append(toks, f.a.Assertion(b, tokenURL, t0))
	}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(toks) {
			b.StopTimer()
			w = f.world(b, nil)
			i = 0
			b.StartTimer()
		}
		if _, err := w.x.Exchange(ctx, assertionRequest(toks[i])); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
