package unsettledstore_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/unsettledstore"
)

// kept returns a kept envelope whose header is header (the store only
// checks that the seal is the header's).
func kept(key byte, header string, sealed, clear []byte) ledger.KeptEnvelope {
	k := ledger.KeptEnvelope{Envelope: ledger.Envelope{Header: []byte(header), Sealed: sealed, Clear: clear}}
	k.Key[0] = key
	return k
}

func open(t *testing.T, db *gorm.DB) *unsettledstore.Store {
	t.Helper()
	s, err := unsettledstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func load(t *testing.T, s *unsettledstore.Store) []ledger.KeptEnvelope {
	t.Helper()
	got, err := s.Kept(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Envelopes kept come back byte for byte, oldest first; keeping one
// again changes nothing; settling removes exactly the ones named.
func TestKeepSettle(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db)
		a := kept(1, "header-a", []byte("sealed-a"), nil)
		b := kept(2, "header-b", nil, []byte(`{"clear":"b"}`))
		c := kept(1, "header-c", []byte("sealed-c"), nil) // another envelope of a's entry
		for _, k := range []ledger.KeptEnvelope{a, b, c, a} {
			if err := s.Keep(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff([]ledger.KeptEnvelope{a, b, c}, load(t, s)); diff != "" {
			t.Fatalf("kept (-want +got):\n%s", diff)
		}
		var unknown ledger.Digest
		if err := s.Settle(t.Context(), a.Seal(), unknown); err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ledger.KeptEnvelope{b, c}, load(t, s)); diff != "" {
			t.Fatalf("after settling a (-want +got):\n%s", diff)
		}
		if err := s.Settle(t.Context(), b.Seal(), c.Seal()); err != nil {
			t.Fatal(err)
		}
		if got := load(t, s); len(got) != 0 {
			t.Errorf("after settling all: %d kept", len(got))
		}
	})
}

// What Keep returned for survives closing and reopening the database.
func TestKeptAcrossReopen(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		a := kept(7, "header-a", []byte("sealed-a"), nil)
		db, err := database.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := open(t, db).Keep(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		if err := database.Close(db); err != nil {
			t.Fatal(err)
		}
		db, err = database.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer database.Close(db)
		if diff := cmp.Diff([]ledger.KeptEnvelope{a}, load(t, open(t, db))); diff != "" {
			t.Errorf("after reopening (-want +got):\n%s", diff)
		}
	})
}

// A row whose header is not the one its seal names is an error, not an
// envelope a retry would submit.
func TestKeptRowTampered(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db)
		a := kept(1, "header-a", []byte("sealed-a"), nil)
		if err := s.Keep(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE ledger_unsettled SET header = ?", []byte("header-x")).Error; err != nil {
			t.Fatal(err)
		}
		if got, err := s.Kept(t.Context()); err == nil {
			t.Fatalf("tampered row loaded: %v", got)
		}
	})
}
