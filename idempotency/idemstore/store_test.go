package idemstore_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/idempotency"
	"github.com/healthgw/healthgw/idempotency/idemstore"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, db *gorm.DB, c *clock) *idemstore.Store {
	t.Helper()
	s, err := idemstore.Open(t.Context(), db, idemstore.Options{Lease: time.Minute, Retention: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(key, body string, ids *atomic.Int64) idempotency.Request {
	return idempotency.Request{
		Scope: "org:hosp-a", Key: key, Operation: "POST /v1/records",
		Fingerprint: idempotency.Fingerprint("POST", "/v1/records", "", []byte(body)),
		NewID: func() string {
			return "id-" + string(rune('0'+ids.Add(1)))
		},
	}
}

// TestLifecycle walks one key through its states: a first attempt fixes
// the ID; a second attempt while it runs is in progress; a released
// attempt's key is retried with the same ID; a completed key replays its
// response; the same key with another body or route is a mismatch.
func TestLifecycle(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := &clock{now: t0}
		s := open(t, db, c)
		ctx := t.Context()
		var ids atomic.Int64
		r := request("k-1", `{"a":1}`, &ids)

		first, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if first.Retry() || first.Replay != nil || first.ResourceID != "id-1" || !first.Started.Equal(t0) || !first.Until.Equal(t0.Add(time.Minute)) {
			t.Fatalf("first claim %+v", first)
		}
		var ip *idempotency.InProgressError
		if _, err := s.Begin(ctx, r); !errors.As(err, &ip) || !errors.Is(err, idempotency.ErrInProgress) || ip.RetryAfter != time.Minute {
			t.Fatalf("second attempt while the first runs: %v", err)
		}
		other := r
		other.Fingerprint = idempotency.Fingerprint("POST", "/v1/records", "", []byte(`{"a":2}`))
		if _, err := s.Begin(ctx, other); !errors.Is(err, idempotency.ErrMismatch) {
			t.Fatalf("same key, other body: %v, want ErrMismatch", err)
		}
		route := r
		route.Operation = "POST /v1/consents"
		if _, err := s.Begin(ctx, route); !errors.Is(err, idempotency.ErrMismatch) {
			t.Fatalf("same key, other route: %v, want ErrMismatch", err)
		}

		// The outcome is unknown: released, the key stays with its ID.
		if err := s.Release(ctx, first); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Pending(ctx); err != nil || n != 1 {
			t.Fatalf("Pending = %d, %v", n, err)
		}
		c.add(time.Second)
		retry, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !retry.Retry() || retry.Attempt != 2 || retry.ResourceID != "id-1" || !retry.Started.Equal(t0) || retry.Lease == first.Lease {
			t.Fatalf("retry claim %+v", retry)
		}
		// The first attempt's lease is gone: it cannot settle the key.
		if err := s.Complete(ctx, first, idempotency.Response{Status: 201}); !errors.Is(err, idemstore.ErrLeaseLost) {
			t.Fatalf("Complete with a lost lease: %v", err)
		}
		want := idempotency.Response{Status: 201, ContentType: "application/json", Location: "/v1/records/id-1", Body: []byte(`{"id":"id-1"}`)}
		if err := s.Complete(ctx, retry, want); err != nil {
			t.Fatal(err)
		}
		again, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if again.Replay == nil {
			t.Fatalf("done key: claim %+v, want a replay", again)
		}
		if diff := cmp.Diff(want, *again.Replay); diff != "" {
			t.Errorf("replay (-want +got):\n%s", diff)
		}
		if again.ResourceID != "id-1" {
			t.Errorf("replay names %q", again.ResourceID)
		}
		if _, err := s.Begin(ctx, other); !errors.Is(err, idempotency.ErrMismatch) {
			t.Fatalf("done key, other body: %v, want ErrMismatch", err)
		}
		if n, err := s.Pending(ctx); err != nil || n != 0 {
			t.Fatalf("Pending after completion = %d, %v", n, err)
		}
	})
}

// TestScopes: the same key of two principals is two keys.
func TestScopes(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db, &clock{now: t0})
		var ids atomic.Int64
		a := request("shared", "{}", &ids)
		b := a
		b.Scope = "org:hosp-b"
		ca, err := s.Begin(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := s.Begin(t.Context(), b)
		if err != nil {
			t.Fatal(err)
		}
		if ca.Retry() || cb.Retry() || ca.ResourceID == cb.ResourceID {
			t.Errorf("claims %+v and %+v, want two first attempts with their own IDs", ca, cb)
		}
	})
}

// TestLeaseExpiry: an attempt that never settles (its process died)
// holds the key only until its lease ends; then the next attempt retries.
func TestLeaseExpiry(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := &clock{now: t0}
		s := open(t, db, c)
		var ids atomic.Int64
		r := request("k", "{}", &ids)
		crashed, err := s.Begin(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		c.add(59 * time.Second)
		if _, err := s.Begin(t.Context(), r); !errors.Is(err, idempotency.ErrInProgress) {
			t.Fatalf("before the lease ends: %v", err)
		}
		c.add(time.Second)
		retry, err := s.Begin(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if !retry.Retry() || retry.ResourceID != crashed.ResourceID {
			t.Fatalf("after the lease: %+v", retry)
		}
	})
}

// TestRequestLease: a request may ask for a longer lease than the
// store's (a streamed upload), never a shorter one; a retry's lease is
// the one its request asks for.
func TestRequestLease(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := &clock{now: t0}
		s := open(t, db, c) // a minute's lease
		var ids atomic.Int64
		long := request("long", "{}", &ids)
		long.Lease = 10 * time.Minute
		first, err := s.Begin(t.Context(), long)
		if err != nil {
			t.Fatal(err)
		}
		if first.For != 10*time.Minute || !first.Until.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("lease %v until %v, want 10m", first.For, first.Until)
		}
		c.add(9 * time.Minute)
		var busy *idempotency.InProgressError
		if _, err := s.Begin(t.Context(), long); !errors.As(err, &busy) || busy.RetryAfter != time.Minute {
			t.Fatalf("9 minutes in: %v, want in progress for another minute", err)
		}
		c.add(time.Minute)
		retry, err := s.Begin(t.Context(), long)
		if err != nil || !retry.Retry() || retry.For != 10*time.Minute {
			t.Fatalf("after the lease: %+v, %v", retry, err)
		}
		short := request("short", "{}", &ids)
		short.Lease = time.Second
		if cl, err := s.Begin(t.Context(), short); err != nil || cl.For != time.Minute {
			t.Errorf("a shorter lease asked for: %+v, %v; want the store's minute", cl, err)
		}
	})
}

// TestForget: a key whose attempt failed without effect is deleted, so
// the client may use it for a corrected request.
func TestForget(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db, &clock{now: t0})
		var ids atomic.Int64
		r := request("k", `{"bad":true}`, &ids)
		c, err := s.Begin(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Forget(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		fixed := request("k", `{"good":true}`, &ids)
		c2, err := s.Begin(t.Context(), fixed)
		if err != nil {
			t.Fatalf("reusing a forgotten key: %v", err)
		}
		if c2.Retry() || c2.ResourceID == c.ResourceID {
			t.Errorf("claim after forget %+v, want a first attempt with a new ID", c2)
		}
	})
}

// TestPurge: done keys older than the retention go; pending keys stay,
// however old.
func TestPurge(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		c := &clock{now: t0}
		s := open(t, db, c)
		ctx := t.Context()
		var ids atomic.Int64
		done, err := s.Begin(ctx, request("done", "{}", &ids))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, done, idempotency.Response{Status: 201}); err != nil {
			t.Fatal(err)
		}
		unknown, err := s.Begin(ctx, request("unknown", "{}", &ids))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, unknown); err != nil {
			t.Fatal(err)
		}
		c.add(30 * time.Minute)
		if n, err := s.PurgeExpired(ctx); err != nil || n != 0 {
			t.Fatalf("purge within the retention: %d, %v", n, err)
		}
		c.add(48 * time.Hour)
		if n, err := s.PurgeExpired(ctx); err != nil || n != 1 {
			t.Fatalf("purge after the retention: %d, %v, want 1", n, err)
		}
		if n, err := s.Pending(ctx); err != nil || n != 1 {
			t.Fatalf("pending keys after purge: %d, %v, want 1", n, err)
		}
		r, err := s.Begin(ctx, request("unknown", "{}", &ids))
		if err != nil || !r.Retry() || r.ResourceID != unknown.ResourceID {
			t.Fatalf("the unknown key after purge: %+v, %v", r, err)
		}
	})
}

// TestConcurrentBegin: of many simultaneous first attempts with one key,
// exactly one runs; the others are in progress.
func TestConcurrentBegin(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db, &clock{now: t0})
		var ids atomic.Int64
		const n = 8
		var (
			wg      sync.WaitGroup
			won     atomic.Int64
			waiting atomic.Int64
			errs    = make(chan error, n)
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Begin(t.Context(), request("k", "{}", &ids))
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, idempotency.ErrInProgress):
					waiting.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if won.Load() != 1 || waiting.Load() != n-1 {
			t.Errorf("%d attempts ran and %d were told to wait, want 1 and %d", won.Load(), waiting.Load(), n-1)
		}
	})
}

func TestFingerprint(t *testing.T) {
	a := idempotency.Fingerprint("POST", "/v1/consents/x/revoke", "", nil)
	for _, other := range [][32]byte{
		idempotency.Fingerprint("POST", "/v1/consents/y/revoke", "", nil),
		idempotency.Fingerprint("DELETE", "/v1/consents/x/revoke", "", nil),
		idempotency.Fingerprint("POST", "/v1/consents/x/revoke", "a=1", nil),
		idempotency.Fingerprint("POST", "/v1/consents/x/revoke", "", []byte("{}")),
		idempotency.Fingerprint("POST", "/v1/consents/x/revok", "e", nil), // lengths are part of it
	} {
		if other == a {
			t.Error("two different requests have one fingerprint")
		}
	}
	if a != idempotency.Fingerprint("POST", "/v1/consents/x/revoke", "", []byte{}) {
		t.Error("a nil and an empty body differ")
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"8e03978e-40d5-43e8-bc93-6894a57f9324": true,
		"with space and \"quote\"":             true,
		"":                                     false,
		"tab\there":                            false,
		"é":                                    false,
		string(make([]byte, 256)):              false,
	} {
		if got := idempotency.ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}
