package recordstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 654321000, time.UTC)

func newStore(t *testing.T, db *gorm.DB) *recordstore.Store {
	t.Helper()
	s, err := recordstore.New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	// Migrating again is harmless (a restart).
	if _, err := recordstore.New(t.Context(), db); err != nil {
		t.Fatalf("second migration: %v", err)
	}
	return s
}

func stored(i int, holder, patient string, version int) records.Stored {
	id := uuid.NewString()
	return records.Stored{
		Record: records.Record{
			ID: id, Holder: holder, Patient: patient, Category: records.CategoryLabs,
			ResourceType: "Observation", ContentType: records.FHIRContentType, Size: int64(10 + i),
			Commitment: strings.Repeat(fmt.Sprint(i%10), 64), KeyVersion: version,
			CreatedAt: t0.Add(time.Duration(i) * time.Second),
		},
		Format:     records.FormatVersion,
		Ciphertext: []byte(fmt.Sprintf("ciphertext-%d", i)),
		WrappedKey: []byte(fmt.Sprintf("wrapped-%d", i)),
		Pending:    true,
	}
}

func TestStoreLifecycle(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		a := stored(1, "hosp-a", "ps_a", 1)
		if err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, a); err == nil {
			t.Fatal("duplicate Create succeeded")
		}
		got, err := s.Load(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("Load pending (-want +got):\n%s", diff)
		}
		meta, err := s.Meta(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantMeta := a
		wantMeta.Ciphertext, wantMeta.WrappedKey = nil, nil
		if diff := cmp.Diff(wantMeta, meta); diff != "" {
			t.Errorf("Meta (-want +got):\n%s", diff)
		}
		if _, err := s.Content(ctx, a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Content of a pending record: err = %v, want ErrNotFound", err)
		}
		if list, _ := s.ListByPatient(ctx, "ps_a"); len(list) != 0 {
			t.Errorf("pending record listed: %v", list)
		}

		if at, err := s.Publish(ctx, a.ID, 41); err != nil || at != 41 {
			t.Fatalf("Publish = %d, %v", at, err)
		}
		// Published already (the registrations projection was first):
		// the record keeps the index it has.
		if at, err := s.Publish(ctx, a.ID, 42); err != nil || at != 41 {
			t.Errorf("second Publish = %d, %v, want 41", at, err)
		}
		if _, err := s.Publish(ctx, uuid.NewString(), 42); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Publish of no record: err = %v, want ErrNotFound", err)
		}
		if err := s.DeletePending(ctx, a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("DeletePending of a visible record: err = %v, want ErrNotFound", err)
		}
		a.Pending, a.LedgerIndex = false, 41
		if got, _ := s.Load(ctx, a.ID); !cmp.Equal(a, got) {
			t.Errorf("after Publish: %s", cmp.Diff(a, got))
		}
		content, err := s.Content(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantContent := records.SealedContent{Format: a.Format, Ciphertext: a.Ciphertext, WrappedKey: a.WrappedKey, KeyVersion: a.KeyVersion}
		if diff := cmp.Diff(wantContent, content); diff != "" {
			t.Errorf("Content (-want +got):\n%s", diff)
		}
		for _, id := range []string{uuid.NewString(), recordstore.DecoyID} {
			if _, err := s.Content(ctx, id); !errors.Is(err, records.ErrNotFound) {
				t.Errorf("Content of %s: err = %v, want ErrNotFound", id, err)
			}
		}
		list, err := s.ListByPatient(ctx, "ps_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]records.Record{a.Record}, list); diff != "" {
			t.Errorf("ListByPatient (-want +got):\n%s", diff)
		}

		at := t0.Add(time.Hour)
		if err := s.Shred(ctx, a.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := s.Shred(ctx, a.ID, at); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("second Shred: err = %v, want ErrNotFound", err)
		}
		unlogged, err := s.UnloggedShreds(ctx)
		if err != nil || len(unlogged) != 1 || unlogged[0].ID != a.ID {
			t.Fatalf("UnloggedShreds = %v, %v", unlogged, err)
		}
		if err := s.LogShred(ctx, a.ID, 50); err != nil {
			t.Fatal(err)
		}
		if unlogged, _ := s.UnloggedShreds(ctx); len(unlogged) != 0 {
			t.Errorf("UnloggedShreds after LogShred = %v", unlogged)
		}
		want := a
		want.Ciphertext, want.WrappedKey = nil, nil
		want.Shredded, want.ShreddedAt, want.ShredLogged, want.ShredIndex = true, at, true, 50
		if got, _ := s.Load(ctx, a.ID); !cmp.Equal(want, got) {
			t.Errorf("tombstone: %s", cmp.Diff(want, got))
		}
		if _, err := s.Content(ctx, a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Content of a shredded record: err = %v, want ErrNotFound", err)
		}
		if list, _ := s.ListByPatient(ctx, "ps_a"); len(list) != 0 {
			t.Errorf("shredded record listed: %v", list)
		}

		p := stored(2, "hosp-a", "ps_a", 1)
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := s.Shred(ctx, p.ID, at); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Shred of a pending record: err = %v, want ErrNotFound", err)
		}
		if err := s.DeletePending(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Meta(ctx, p.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Meta after DeletePending: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Load(ctx, uuid.NewString()); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Load of nothing: err = %v, want ErrNotFound", err)
		}
	})
}

func TestStoreListAndPendingCleanup(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		var want []records.Record
		for i := 5; i >= 1; i-- { // inserted newest first
			r := stored(i, "hosp-a", "ps_a", 1)
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			if i != 3 { // 3 stays pending
				if _, err := s.Publish(ctx, r.ID, uint64(i)); err != nil {
					t.Fatal(err)
				}
				r.Pending, r.LedgerIndex = false, uint64(i)
				want = append([]records.Record{r.Record}, want...)
			}
		}
		if err := s.Create(ctx, stored(9, "hosp-a", "ps_b", 1)); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListByPatient(ctx, "ps_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListByPatient, oldest first (-want +got):\n%s", diff)
		}
		// Pending records created before t0+4s: #3 only (#9 is newer).
		n, err := s.DeletePendingBefore(ctx, t0.Add(4*time.Second))
		if err != nil || n != 1 {
			t.Errorf("DeletePendingBefore = %d, %v; want 1", n, err)
		}
		n, err = s.DeletePendingBefore(ctx, t0.Add(time.Hour))
		if err != nil || n != 1 {
			t.Errorf("DeletePendingBefore(later) = %d, %v; want 1 (#9)", n, err)
		}
		if got, _ := s.ListByPatient(ctx, "ps_a"); len(got) != 4 {
			t.Errorf("visible records were deleted: %d left", len(got))
		}
	})
}

func TestStoreRewrap(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		var ids []string
		for i := range 7 {
			r := stored(i, "hosp-a", "ps_a", 1+i%2) // versions 1,2,1,2,…
			r.Pending = i == 6
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if err := s.Create(ctx, stored(10, "hosp-b", "ps_a", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Shred(ctx, ids[0], t0); err != nil { // v1, shredded: not counted
			t.Fatal(err)
		}
		counts, err := s.KeyVersions(ctx, "hosp-a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[int]int64{1: 3, 2: 3}, counts); diff != "" {
			t.Errorf("KeyVersions (-want +got):\n%s", diff)
		}

		// Page through the records not under v2, two at a time.
		var seen []string
		after := ""
		for {
			page, err := s.WrappedKeys(ctx, "hosp-a", 2, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, w := range page {
				if w.KeyVersion != 1 || w.Format != records.FormatVersion || !bytes.HasPrefix(w.Wrapped, []byte("wrapped-")) {
					t.Errorf("WrappedKeys returned %+v", w)
				}
				seen = append(seen, w.ID)
			}
			after = page[len(page)-1].ID
		}
		wantIDs := []string{ids[2], ids[4], ids[6]}
		if diff := cmp.Diff(sorted(wantIDs), seen); diff != "" {
			t.Errorf("WrappedKeys IDs (-want +got):\n%s", diff)
		}

		n, err := s.Rewrap(ctx, []records.Rewrapped{
			{ID: ids[2], FromVersion: 1, ToVersion: 2, Wrapped: []byte("new-2")},
			{ID: ids[4], FromVersion: 2, ToVersion: 3, Wrapped: []byte("stale")},    // wrong from: skipped
			{ID: ids[0], FromVersion: 1, ToVersion: 2, Wrapped: []byte("shredded")}, // shredded: skipped
			{ID: ids[6], FromVersion: 1, ToVersion: 2, Wrapped: []byte("new-6")},
		})
		if err != nil || n != 2 {
			t.Fatalf("Rewrap = %d, %v; want 2", n, err)
		}
		for id, want := range map[string]string{ids[2]: "new-2", ids[6]: "new-6", ids[4]: "wrapped-4"} {
			got, err := s.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.WrappedKey) != want {
				t.Errorf("%s: wrapped key %q, want %q", id, got.WrappedKey, want)
			}
		}
		if got, _ := s.Load(ctx, ids[0]); got.WrappedKey != nil {
			t.Errorf("Rewrap resurrected a shredded key")
		}
		if counts, _ := s.KeyVersions(ctx, "hosp-b"); counts[1] != 1 {
			t.Errorf("hosp-b counts = %v", counts)
		}
	})
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestStoreLargeRecord stores a maximal (16 MiB) ciphertext.
func TestStoreLargeRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB round trip")
	}
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		r := stored(1, "hosp-a", "ps_a", 1)
		r.Ciphertext = make([]byte, records.DefaultMaxSize+28)
		if _, err := rand.Read(r.Ciphertext); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Ciphertext, r.Ciphertext) {
			t.Fatal("16 MiB ciphertext differs after the round trip")
		}
	})
}

// TestRegistrationsProjection: following the log, the store publishes a
// pending record when its registration (same ID, holder, commitment) is
// applied, and notes the index of a shredding it did not know logged;
// nothing else changes a row, and entries before the cursor are skipped.
func TestRegistrationsProjection(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		pendingA := stored(1, "hosp-a", "ps_a", 1)
		pendingB := stored(2, "hosp-a", "ps_a", 1)
		pendingE := stored(5, "hosp-a", "ps_a", 1)
		visible := stored(3, "hosp-a", "ps_a", 1)
		shredded := stored(4, "hosp-a", "ps_a", 1)
		for _, r := range []records.Stored{pendingA, pendingB, pendingE, visible, shredded} {
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		for i, r := range []records.Stored{visible, shredded} {
			if _, err := s.Publish(ctx, r.ID, uint64(100+i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Shred(ctx, shredded.ID, t0); err != nil {
			t.Fatal(err)
		}
		reg := func(r records.Stored, holder, commitment string) ledger.Entry {
			return entry(t, holder, &ledger.RecordRegistered{RecordID: r.ID, Holder: holder, Patient: r.Patient, Category: string(r.Category), Commitment: commitment})
		}
		entries := []ledger.Entry{
			0: reg(pendingA, "hosp-a", pendingA.Commitment),
			1: reg(pendingB, "hosp-a", strings.Repeat("f", 64)), // not B's ciphertext
			2: reg(pendingA, "hosp-a", pendingA.Commitment),     // a second registration of A
			3: reg(stored(7, "hosp-b", "ps_a", 1), "hosp-b", strings.Repeat("7", 64)),
			4: entry(t, "hosp-a", &ledger.RecordShredded{RecordID: shredded.ID, Holder: "hosp-a", Patient: "ps_a"}),
			5: reg(pendingE, "hosp-b", pendingE.Commitment), // another holder's claim
			6: reg(visible, "hosp-a", visible.Commitment),   // published already
			// sealed to other gateways: read without a body, skipped
			7: {Type: ledger.TypeRecordRegistered, Version: ledger.CurrentVersion, Org: "hosp-z", Author: "gw-elsewhere", Time: t0},
		}
		if err := s.Apply(ctx, 0, entries[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, 1, entries[1:]); err != nil { // overlaps: 1 and 2 are skipped
			t.Fatal(err)
		}
		if err := s.Apply(ctx, 9, entries[:1]); !errors.Is(err, database.ErrGap) {
			t.Fatalf("Apply beyond the cursor: %v, want ErrGap", err)
		}
		if n, err := s.Next(ctx); err != nil || n != 8 {
			t.Fatalf("Next = %d, %v, want 8", n, err)
		}
		state := func(r records.Stored) string {
			got, err := s.Meta(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("pending=%v index=%d shredLogged=%v shredIndex=%d", got.Pending, got.LedgerIndex, got.ShredLogged, got.ShredIndex)
		}
		for _, tt := range []struct {
			name string
			r    records.Stored
			want string
		}{
			{"registered", pendingA, "pending=false index=0 shredLogged=false shredIndex=0"},
			{"other commitment", pendingB, "pending=true index=0 shredLogged=false shredIndex=0"},
			{"other holder", pendingE, "pending=true index=0 shredLogged=false shredIndex=0"},
			{"published already", visible, "pending=false index=100 shredLogged=false shredIndex=0"},
			{"shredding committed", shredded, "pending=false index=101 shredLogged=true shredIndex=4"},
		} {
			if got := state(tt.r); got != tt.want {
				t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
			}
		}
		// The holders index: every registration opened, whoever holds.
		holders := func() []string {
			h, err := s.Holders(ctx, "ps_a")
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		if got := holders(); !slices.Equal(got, []string{"hosp-a", "hosp-b"}) {
			t.Errorf("holders of ps_a = %v, want [hosp-a hosp-b]", got)
		}
		if h, err := s.Holders(ctx, "ps_nobody"); err != nil || len(h) != 0 {
			t.Errorf("holders of an unknown patient = %v, %v", h, err)
		}
		// Rewound, the projection settles nothing twice.
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if got := holders(); len(got) != 0 {
			t.Errorf("holders after Reset = %v, want none", got)
		}
		if err := s.Apply(ctx, 0, entries); err != nil {
			t.Fatal(err)
		}
		if got := state(pendingA); got != "pending=false index=0 shredLogged=false shredIndex=0" {
			t.Errorf("after a rebuild: %s", got)
		}
		if got := holders(); !slices.Equal(got, []string{"hosp-a", "hosp-b"}) {
			t.Errorf("holders after a rebuild = %v", got)
		}
	})
}

func entry(t *testing.T, org string, body any) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	e.Time = t0
	return e
}

// TestHoldersIndexAdded: a database from before the holders index follows
// the log again from the start, so the index holds every registration.
func TestHoldersIndexAdded(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		r := stored(1, "hosp-a", "ps_a", 1)
		es := []ledger.Entry{entry(t, "hosp-a", &ledger.RecordRegistered{RecordID: r.ID, Holder: "hosp-a", Patient: "ps_a", Category: "labs", Commitment: r.Commitment})}
		if err := s.Apply(ctx, 0, es); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrator().DropTable("record_holders"); err != nil {
			t.Fatal(err)
		}
		s = newStore(t, db)
		if n, err := s.Next(ctx); err != nil || n != 0 {
			t.Fatalf("Next after the index was added = %d, %v, want 0", n, err)
		}
		if err := s.Apply(ctx, 0, es); err != nil {
			t.Fatal(err)
		}
		if h, err := s.Holders(ctx, "ps_a"); err != nil || !slices.Equal(h, []string{"hosp-a"}) {
			t.Errorf("holders = %v, %v", h, err)
		}
	})
}

// TestRegistrationsIndex: every registration opened goes into the
// registrations index, whoever holds the record, with what the entry
// says; the first registration of a (holder, record) wins, the same ID
// at another holder is another record, a shredding removes the record
// from the listing, and a Reset and a rebuild give the same index.
func TestRegistrationsIndex(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := newStore(t, db)
		ctx := t.Context()
		reg := func(id, holder, patient, commitment string, size int64) ledger.Entry {
			return entry(t, holder, &ledger.RecordRegistered{
				RecordID: id, Holder: holder, Patient: patient, Category: "labs", ResourceType: "Observation",
				Commitment: commitment, ContentType: records.FHIRContentType, Size: size,
			})
		}
		c := func(d string) string { return strings.Repeat(d, 64) }
		entries := []ledger.Entry{
			0: reg("rec-1", "hosp-a", "ps_a", c("1"), 11),
			1: reg("rec-2", "hosp-b", "ps_a", c("2"), 22),
			2: reg("rec-3", "hosp-b", "ps_b", c("3"), 33), // another patient
			3: reg("rec-1", "hosp-a", "ps_a", c("9"), 99), // a second registration: the first wins
			4: reg("rec-1", "hosp-c", "ps_a", c("4"), 44), // the same ID at another holder
			5: reg("rec-5", "hosp-a", "ps_a", c("5"), 0),  // an entry from before sizes
			6: entry(t, "hosp-b", &ledger.RecordShredded{RecordID: "rec-2", Holder: "hosp-b", Patient: "ps_a"}),
			7: entry(t, "hosp-z", &ledger.RecordShredded{RecordID: "rec-5", Holder: "hosp-z", Patient: "ps_a"}), // not rec-5's holder
		}
		list := func() []string {
			rs, err := s.Registered(ctx, "ps_a")
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rs {
				out = append(out, fmt.Sprintf("%s/%s %s %d@%d %s %s %v", r.Holder, r.ID, r.Commitment[:1], r.Size, r.LedgerIndex, r.ContentType, r.Category, r.CreatedAt.Equal(t0)))
			}
			return out
		}
		want := []string{
			"hosp-a/rec-1 1 11@0 application/fhir+json labs true",
			"hosp-c/rec-1 4 44@4 application/fhir+json labs true",
			"hosp-a/rec-5 5 0@5 application/fhir+json labs true",
		}
		if err := s.Apply(ctx, 0, entries[:2]); err != nil {
			t.Fatal(err)
		}
		if got := list(); len(got) != 2 {
			t.Errorf("after two entries: %v", got)
		}
		if err := s.Apply(ctx, 2, entries[2:]); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, list()); diff != "" {
			t.Errorf("index (-want +got):\n%s", diff)
		}
		if rs, err := s.Registered(ctx, "ps_nobody"); err != nil || len(rs) != 0 {
			t.Errorf("an unknown patient: %v, %v", rs, err)
		}
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if got := list(); len(got) != 0 {
			t.Errorf("after Reset: %v", got)
		}
		if err := s.Apply(ctx, 0, entries); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, list()); diff != "" {
			t.Errorf("rebuilt index (-want +got):\n%s", diff)
		}
		// A database from before the index follows the log again.
		if err := db.Migrator().DropTable("record_registrations"); err != nil {
			t.Fatal(err)
		}
		s = newStore(t, db)
		if n, err := s.Next(ctx); err != nil || n != 0 {
			t.Fatalf("Next after the index was added = %d, %v, want 0", n, err)
		}
	})
}

// legacyRow is the records row as it was created before the ciphertext
// column moved last: with the ciphertext in the middle.
type legacyRow struct {
	ID               string    `gorm:"primaryKey;size:36"`
	Holder           string    `gorm:"size:63;not null;index:idx_records_holder_key,priority:1"`
	Patient          string    `gorm:"size:80;not null;index:idx_records_patient"`
	Category         string    `gorm:"size:32;not null"`
	ResourceType     string    `gorm:"size:64;not null"`
	ContentType      string    `gorm:"size:255;not null"`
	Size             int64     `gorm:"not null"`
	Format           int       `gorm:"not null"`
	Ciphertext       []byte    // NULL once shredded
	WrappedKey       []byte    // NULL once shredded
	KeyVersion       int       `gorm:"not null;index:idx_records_holder_key,priority:2"`
	Commitment       string    `gorm:"size:64;not null"`
	LedgerIndex      *uint64   // NULL while pending
	Pending          bool      `gorm:"not null;index:idx_records_pending,priority:1"`
	CreatedAt        time.Time `gorm:"not null;index:idx_records_pending,priority:2"`
	Shredded         bool      `gorm:"not null"`
	ShreddedAt       *time.Time
	ShredLedgerIndex *uint64
}

func (legacyRow) TableName() string { return "records" }

// TestStoreCiphertextLast: on SQLite the ciphertext is the records
// table's last column (so that reading a record's metadata never walks
// its content's overflow pages), and a table of the older layout is
// rebuilt so at start, its rows, indexes and the decoy row intact.
func TestStoreCiphertextLast(t *testing.T) {
	columns := func(t *testing.T, db *gorm.DB) []string {
		t.Helper()
		var cols []string
		if err := db.Raw("SELECT name FROM pragma_table_info('records') ORDER BY cid").Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		return cols
	}
	indexes := func(t *testing.T, db *gorm.DB) []string {
		t.Helper()
		var idx []string
		if err := db.Raw("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' AND sql IS NOT NULL ORDER BY name").Scan(&idx).Error; err != nil {
			t.Fatal(err)
		}
		return idx
	}
	t.Run("new", func(t *testing.T) {
		db := databasetest.SQLite(t)
		newStore(t, db)
		if cols := columns(t, db); cols[len(cols)-1] != "ciphertext" {
			t.Errorf("columns %v: the ciphertext is not last", cols)
		}
	})
	t.Run("rebuilt", func(t *testing.T) {
		db := databasetest.SQLite(t)
		if err := db.AutoMigrate(&legacyRow{}); err != nil {
			t.Fatal(err)
		}
		if cols := columns(t, db); cols[len(cols)-1] == "ciphertext" {
			t.Fatalf("the legacy layout has the ciphertext last: %v", cols)
		}
		wantIdx := indexes(t, db)
		idx := uint64(7)
		big := make([]byte, 256<<10)
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		a, b := stored(1, "hosp-a", "ps_a", 1), stored(2, "hosp-b", "ps_b", 2)
		a.Ciphertext = big
		for _, s := range []records.Stored{a, b} {
			r := legacyRow{ID: s.ID, Holder: s.Holder, Patient: s.Patient, Category: string(s.Category),
				ResourceType: s.ResourceType, ContentType: s.ContentType, Size: s.Size, Format: s.Format,
				Ciphertext: s.Ciphertext, WrappedKey: s.WrappedKey, KeyVersion: s.KeyVersion,
				Commitment: s.Commitment, LedgerIndex: &idx, CreatedAt: s.CreatedAt}
			if err := db.Create(&r).Error; err != nil {
				t.Fatal(err)
			}
		}
		s := newStore(t, db) // migrates twice: the second finds nothing to do
		if cols := columns(t, db); cols[len(cols)-1] != "ciphertext" || len(cols) != 19 {
			t.Errorf("columns after the rebuild %v: want 19, the ciphertext last", cols)
		}
		if diff := cmp.Diff(wantIdx, indexes(t, db)); diff != "" {
			t.Errorf("indexes after the rebuild (-before +after):\n%s", diff)
		}
		for _, want := range []records.Stored{a, b} {
			want.Pending, want.LedgerIndex = false, idx
			got, err := s.Load(t.Context(), want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("record %s after the rebuild (-want +got):\n%s", want.ID, diff)
			}
		}
		if _, err := s.Meta(t.Context(), uuid.NewString()); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Meta of no record after the rebuild: %v, want ErrNotFound (the decoy row)", err)
		}
		if db.Migrator().HasTable("records_rebuild") {
			t.Error("the old table is left after the rebuild")
		}
	})
}
