package justificationstore_test

import (
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/access/justificationstore"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// TestStore: an opening is found by its commitment, checked against it,
// stored idempotently; unknown commitments are absent; a row that does
// not open its commitment is an error, not a reason shown.
func TestStore(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s, err := justificationstore.Open(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		j, err := ledger.NewJustification("patient unconscious in ED")
		if err != nil {
			t.Fatal(err)
		}
		c := ledger.JustificationCommitment(j.Salt, j.Reason).String()
		for range 2 {
			if err := s.Put(t.Context(), j); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		got, err := s.Openings(t.Context(), []string{c, strings.Repeat("0", 64)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[c] != j {
			t.Errorf("Openings = %+v", got)
		}
		if none, err := s.Openings(t.Context(), nil); err != nil || len(none) != 0 {
			t.Errorf("no commitments: %v %v", none, err)
		}
		// A tampered row is refused.
		if err := db.Exec("UPDATE breakglass_justifications SET reason = ? WHERE commitment = ?", "something else", c).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.Openings(t.Context(), []string{c}); err == nil {
			t.Error("a row that does not open its commitment was returned")
		}
	})
}
