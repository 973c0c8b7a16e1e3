package authstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/database/databasetest"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func open(t *testing.T, db *gorm.DB, clock *authtest.Clock) *authstore.Store {
	t.Helper()
	s, err := authstore.Open(t.Context(), db, authstore.Options{Now: clock.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestClaim(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		s := open(t, db, clock)
		until := t0.Add(5 * time.Minute)
		steps := []struct {
			name    string
			at      time.Time
			issuer  string
			jti     string
			until   time.Time
			wantErr error
		}{
			{"first use", t0, "hosp-a", "j1", until, nil},
			{"replay", t0, "hosp-a", "j1", until, auth.ErrReplay},
			{"same jti, other issuer", t0, "hosp-b", "j1", until, nil},
			{"other jti", t0, "hosp-a", "j2", until, nil},
			{"replay at the last second", until, "hosp-a", "j1", until, auth.ErrReplay},
			{"reuse once expired", until.Add(time.Second), "hosp-a", "j1", until.Add(time.Hour), nil},
			{"replay of the reuse", until.Add(2 * time.Second), "hosp-a", "j1", until.Add(time.Hour), auth.ErrReplay},
		}
		for _, st := range steps {
			clock.Set(st.at)
			err := s.Claim(t.Context(), st.issuer, st.jti, st.until)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
				t.Errorf("%s: Claim = %v, want %v", st.name, err, st.wantErr)
			}
		}
	})
}

func TestClaimSurvivesRestart(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		if err := open(t, db, clock).Claim(t.Context(), "hosp-a", "j1", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		err := open(t, db, clock).Claim(t.Context(), "hosp-a", "j1", t0.Add(time.Minute))
		if !errors.Is(err, auth.ErrReplay) {
			t.Errorf("Claim after reopening = %v, want ErrReplay", err)
		}
	})
}

func TestPurge(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		s := open(t, db, clock)
		for i, d := range []time.Duration{time.Minute, 2 * time.Minute, 10 * time.Minute} {
			if err := s.Claim(t.Context(), "hosp-a", string(rune('a'+i)), t0.Add(d)); err != nil {
				t.Fatal(err)
			}
		}
		clock.Set(t0.Add(3 * time.Minute))
		n, err := s.Purge(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		left, err := s.Len(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || left != 1 {
			t.Errorf("Purge removed %d, left %d; want 2 and 1", n, left)
		}
		// The survivor still blocks its jti.
		if err := s.Claim(t.Context(), "hosp-a", "c", t0.Add(10*time.Minute)); !errors.Is(err, auth.ErrReplay) {
			t.Errorf("Claim of the unexpired jti after Purge = %v, want ErrReplay", err)
		}
	})
}

func TestPurgeOnClaim(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		s, err := authstore.Open(t.Context(), db, authstore.Options{Now: clock.Now, PurgeInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Claim(t.Context(), "hosp-a", "old", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(5 * time.Minute))
		if err := s.Claim(t.Context(), "hosp-a", "new", t0.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		n, err := s.Len(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("after a claim past the purge interval %d records remain, want 1", n)
		}
	})
}

func TestClaimConcurrent(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		s := open(t, db, clock)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.Claim(t.Context(), "hosp-a", "race", t0.Add(time.Minute)) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, auth.ErrReplay):
				t.Errorf("Claim: %v", err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent claims succeeded, want 1", won, n)
		}
	})
}

// TestRevocations: a revoked jti stays revoked until its time, across a
// "restart" (a second store over the same database), revoking twice keeps
// the later time, and Purge drops expired records.
func TestRevocations(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		s := open(t, db, clock)
		until := t0.Add(5 * time.Minute)
		revoked := func(s *authstore.Store, jti string) bool {
			t.Helper()
			ok, err := s.Revoked(t.Context(), jti)
			if err != nil {
				t.Fatalf("Revoked: %v", err)
			}
			return ok
		}
		if revoked(s, "t1") {
			t.Fatal("t1 revoked before Revoke")
		}
		if err := s.Revoke(t.Context(), "t1", until); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if err := s.Revoke(t.Context(), "t1", t0.Add(time.Minute)); err != nil {
			t.Fatalf("Revoke again (earlier): %v", err)
		}
		if err := s.Revoke(t.Context(), "", until); err == nil {
			t.Error("Revoke accepted an empty jti")
		}
		again := open(t, db, clock)
		if !revoked(again, "t1") || revoked(again, "t2") {
			t.Errorf("after restart: t1 revoked %v (want true), t2 %v (want false)", revoked(again, "t1"), revoked(again, "t2"))
		}
		clock.Set(until)
		if !revoked(again, "t1") {
			t.Error("t1 not revoked at its last second (a second Revoke shortened it?)")
		}
		clock.Set(until.Add(time.Second))
		if revoked(again, "t1") {
			t.Error("t1 still revoked after its time")
		}
		n, err := again.Purge(t.Context())
		if err != nil || n != 1 {
			t.Errorf("Purge = %d, %v; want 1 record", n, err)
		}
	})
}

// TestRevocationsOfOtherProcesses: a replica sharing the database sees a
// revocation once it refreshes its list (Watch does that in the gateway),
// and a refresh never forgets a revocation made through the store itself.
func TestRevocationsOfOtherProcesses(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := authtest.NewClock(t0)
		a, b := open(t, db, clock), open(t, db, clock)
		if err := a.Revoke(t.Context(), "shared", t0.Add(5*time.Minute)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if ok, _ := b.Revoked(t.Context(), "shared"); ok {
			t.Fatal("b saw the revocation before refreshing: its list is not in memory")
		}
		if err := b.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if ok, _ := b.Revoked(t.Context(), "shared"); !ok {
			t.Error("b does not see a's revocation after Refresh")
		}
		if err := a.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if ok, _ := a.Revoked(t.Context(), "shared"); !ok {
			t.Error("a forgot its own revocation on Refresh")
		}
	})
}

// TestWatchRefreshes: Watch reloads the list until its context ends.
func TestWatchRefreshes(t *testing.T) {
	db := databasetest.SQLite(t)
	clock := authtest.NewClock(t0)
	a, b := open(t, db, clock), open(t, db, clock)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Watch(ctx, time.Millisecond, func(err error) { t.Errorf("refresh: %v", err) })
	}()
	if err := a.Revoke(t.Context(), "w", t0.Add(time.Minute)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if ok, _ := b.Revoked(t.Context(), "w"); ok {
			break
		}
		select {
		case <-deadline.C:
			t.Fatal("Watch never picked up the revocation")
		case <-tick.C:
		}
	}
	cancel()
	<-done
}

// TestRevocationsForgotten: the list in memory holds only unexpired
// revocations, whether Refresh (Watch) or Purge runs, so a long-running
// gateway revoking tokens does not grow without bound.
func TestRevocationsForgotten(t *testing.T) {
	for _, forget := range []struct {
		name string
		run  func(context.Context, *authstore.Store) error
	}{
		{"refresh", func(ctx context.Context, s *authstore.Store) error { return s.Refresh(ctx) }},
		{"purge", func(ctx context.Context, s *authstore.Store) error { _, err := s.Purge(ctx); return err }},
	} {
		t.Run(forget.name, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				clock := authtest.NewClock(t0)
				s := open(t, db, clock)
				for i := range 50 {
					if err := s.Revoke(t.Context(), fmt.Sprintf("old-%d", i), t0.Add(time.Minute)); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Revoke(t.Context(), "new", t0.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if got := authstore.RevokedInMemory(s); got != 51 {
					t.Fatalf("%d revocations in memory, want 51", got)
				}
				clock.Set(t0.Add(2 * time.Minute))
				if err := forget.run(t.Context(), s); err != nil {
					t.Fatal(err)
				}
				if got := authstore.RevokedInMemory(s); got != 1 {
					t.Errorf("%d revocations in memory after the old ones expired, want 1", got)
				}
				if ok, _ := s.Revoked(t.Context(), "new"); !ok {
					t.Error("the unexpired revocation was forgotten")
				}
			})
		})
	}
}
