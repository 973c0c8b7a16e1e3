package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
)

// TestExchangeReplayAfterRestart uses an assertion once, "restarts" (closes
// the database, opens it again, builds a new exchanger over it) and
// replays the assertion: immediately, and one second before it would
// expire anyway. Both replays are refused; once expired it is refused as
// expired.
func TestExchangeReplayAfterRestart(t *testing.T) {
	f := newFixture(t)
	tok := f.a.Assertion(t, tokenURL, t0) // exp = t0 + 4m
	lastValid := t0.Add(4*time.Minute + auth.DefaultSkew - time.Second)
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		start := func(at time.Time) (*world, func()) {
			db, err := database.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			clock := authtest.NewClock(at)
			store, err := authstore.Open(t.Context(), db, authstore.Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			w := f.world(t, store)
			w.clock.Set(at)
			return w, func() { _ = database.Close(db) }
		}
		w, stop := start(t0)
		if _, err := w.x.Exchange(t.Context(), assertionRequest(tok)); err != nil {
			t.Fatalf("first use: %v", err)
		}
		stop()
		for _, tc := range []struct {
			name string
			at   time.Time
			want error
		}{
			{"right after the restart", t0.Add(time.Second), auth.ErrReplay},
			{"just before expiry", lastValid, auth.ErrReplay},
			{"after expiry", lastValid.Add(time.Second), auth.ErrInvalidToken},
		} {
			w, stop := start(tc.at)
			_, err := w.x.Exchange(t.Context(), assertionRequest(tok))
			stop()
			if got := oauthCode(t, err); got != auth.CodeInvalidClient || !errors.Is(err, tc.want) {
				t.Errorf("%s: replay = %v, want invalid_client wrapping %v", tc.name, err, tc.want)
			}
		}
	})
}
