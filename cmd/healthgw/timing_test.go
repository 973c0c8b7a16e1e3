//go:build timing

package main

// The timing test is statistical and takes tens of seconds, so it is not
// part of `make test`: run it with `make timing` (also part of `make
// bench`), i.e. go test -tags timing -run TestReadTiming ./cmd/healthgw.

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
)

// timingPairs is the number of interleaved sample pairs per comparison.
const timingPairs = 201

// timingAlpha is the two-sided significance level below which a
// comparison counts as telling its two sides apart.
const timingAlpha = 0.001

// signTest returns how many of the pairs had a slower than b, the number
// of pairs that were not ties, and the two-sided p-value of the sign test
// (exact binomial, p = 1/2) for that count.
func signTest(a, b []time.Duration) (slower, n int, p float64) {
	for i := range a {
		switch {
		case a[i] > b[i]:
			slower++
			n++
		case a[i] < b[i]:
			n++
		}
	}
	k := min(slower, n-slower)
	// P(X <= k) for X ~ Binomial(n, 1/2), doubled.
	var tail float64
	for i := 0; i <= k; i++ {
		tail += math.Exp(lchoose(n, i) - float64(n)*math.Ln2)
	}
	return slower, n, min(1, 2*tail)
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// TestReadTiming: reads of a record that does not exist and denied reads
// of records that do cannot be told apart by their latency, whether the
// record is a small FHIR resource or 1 MiB of binary content. Samples are
// taken in interleaved pairs (which side goes first is random) and
// compared with a sign test; the same is done for two control pairs whose
// sides do the same thing (missing vs missing, denied vs denied), which
// must not be told apart either, or the measurement itself is biased. No
// absolute threshold: only whether one side is consistently slower.
func TestReadTiming(t *testing.T) {
	g := newTestGateway(t, noRateLimits) // thousands of reads by one caller
	atok := g.token(g.register("hosp-a", auth.KindHospital), "")
	ctok := g.token(g.register("hosp-c", auth.KindHospital), "")
	rec1 := g.putRecord(atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	rec2 := g.putRecord(atok, "pat-2", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	// A large record: a denied read must not cost more for it (its
	// content is loaded only after a permit).
	status, body := g.do("POST", "/v1/records", atok, binaryRecordBody(t, "pat-3", 1<<20))
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	large := decode[created](t, body)
	h := g.api.Handler()
	get := func(path string) time.Duration {
		req := httptest.NewRequestWithContext(context.Background(), "GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+ctok)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, rec.Code)
		}
		return d
	}
	var (
		denied1  = "/v1/records/" + rec1.ID + "?purpose=TREAT"
		denied2  = "/v1/records/" + rec2.ID + "?purpose=TREAT"
		missing1 = "/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000dead?purpose=TREAT"
		missing2 = "/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000beef?purpose=TREAT"
		deniedL  = "/v1/records/" + large.ID + "?purpose=TREAT"
	)
	for range 50 { // warm up caches, the token, the ledger writer
		get(denied1)
		get(missing1)
		get(deniedL)
	}
	comparisons := []struct {
		name    string
		a, b    string
		control bool
	}{
		{"missing vs denied", missing1, denied1, false},
		{"missing vs denied (1 MiB record)", missing2, deniedL, false},
		{"control: missing vs missing", missing1, missing2, true},
		{"control: denied vs denied", denied1, denied2, true},
	}
	a := make([][]time.Duration, len(comparisons))
	b := make([][]time.Duration, len(comparisons))
	// The comparisons are interleaved with each other too, so that a
	// slow phase of the machine touches all of them alike.
	for range timingPairs {
		for i, c := range comparisons {
			if rand.IntN(2) == 0 {
				a[i] = append(a[i], get(c.a))
				b[i] = append(b[i], get(c.b))
			} else {
				db := get(c.b)
				b[i] = append(b[i], db)
				a[i] = append(a[i], get(c.a))
			}
		}
	}
	for i, c := range comparisons {
		slower, n, p := signTest(a[i], b[i])
		t.Logf("%s: first side slower in %d of %d pairs, p = %.3g (medians %v vs %v)",
			c.name, slower, n, p, median(a[i]), median(b[i]))
		if p < timingAlpha {
			if c.control {
				t.Errorf("%s: the control tells its sides apart (p = %.3g): the measurement is biased", c.name, p)
			} else {
				t.Errorf("%s: the two can be told apart by latency (p = %.3g < %g)", c.name, p, timingAlpha)
			}
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
