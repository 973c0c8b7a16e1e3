package records_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

func TestVaultRoundTrip(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		pdf := []byte("%PDF-1.7\n\x00\x01\x02 binary \xff\xfe")
		reqs := []records.PutRequest{
			observation("7.1"),
			{Holder: "hosp-a", Patient: "patient-123", Category: records.CategoryImaging, ContentType: "application/pdf", Content: pdf},
			{Holder: "hosp-b", Patient: "patient-123", Category: records.CategoryMentalHealth, ContentType: "text/plain; charset=utf-8", Content: []byte("note"), ResourceType: "DocumentReference"},
		}
		var got []records.Record
		for _, r := range reqs {
			got = append(got, f.put(t, r))
		}
		ps := f.pseud.Pseudonym("patient-123")
		entries := f.log.Entries()
		if len(entries) != len(reqs) {
			t.Fatalf("%d ledger entries, want %d", len(entries), len(reqs))
		}
		for i, rec := range got {
			req := reqs[i]
			if _, err := uuid.Parse(rec.ID); err != nil {
				t.Errorf("ID %q is not a UUID", rec.ID)
			}
			stored, err := f.store.Load(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(stored.Ciphertext)
			ct, _ := records.NormalizeContentType(req.ContentType)
			wantRT := req.ResourceType
			if i == 0 {
				wantRT = "Observation"
			}
			want := records.Record{
				ID:           rec.ID,
				Holder:       req.Holder,
				Patient:      ps,
				Category:     req.Category,
				ResourceType: wantRT,
				ContentType:  ct,
				Size:         int64(len(req.Content)),
				Commitment:   hex.EncodeToString(sum[:]),
				KeyVersion:   1,
				LedgerIndex:  f.log.base + uint64(i),
				CreatedAt:    rec.CreatedAt,
			}
			if diff := cmp.Diff(want, rec); diff != "" {
				t.Errorf("Put %d returned (-want +got):\n%s", i, diff)
			}
			var meta records.Record
			if _, _, err := f.vault.Read(ctx, rec.ID, func(r records.Record) error { meta = r; return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rec, meta); diff != "" {
				t.Errorf("Read %d authorized (-put +seen):\n%s", i, diff)
			}
			openRec, pt, err := f.vault.Open(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, req.Content) {
				t.Errorf("Open %d: content differs", i)
			}
			if diff := cmp.Diff(rec, openRec); diff != "" {
				t.Errorf("Open %d metadata (-put +open):\n%s", i, diff)
			}
			wantEntry := ledger.Entry{
				Type: ledger.TypeRecordRegistered, Version: ledger.CurrentVersion, Org: req.Holder,
				Body: &ledger.RecordRegistered{
					RecordID: rec.ID, Holder: req.Holder, Patient: ps, Category: string(req.Category),
					ResourceType: wantRT, Commitment: rec.Commitment, ContentType: rec.ContentType, Size: rec.Size,
				},
			}
			if diff := cmp.Diff(wantEntry, entries[i], cmpopts.IgnoreFields(ledger.Entry{}, "Time", "Author", "Commitment")); diff != "" {
				t.Errorf("ledger entry %d (-want +got):\n%s", i, diff)
			}
		}
		list, err := f.vault.ListByPatient(ctx, "patient-123")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, list); diff != "" {
			t.Errorf("ListByPatient (-want +got):\n%s", diff)
		}
		if list, err := f.vault.ListByPatient(ctx, "patient-999"); err != nil || len(list) != 0 {
			t.Errorf("ListByPatient(other patient) = %v, %v; want nothing", list, err)
		}
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "", "' OR 1=1 --"} {
			if _, err := readMeta(ctx, f.vault, id); !errors.Is(err, records.ErrNotFound) {
				t.Errorf("Read(%q): err = %v, want ErrNotFound", id, err)
			}
			if _, pt, err := f.vault.Open(ctx, id); !errors.Is(err, records.ErrNotFound) || pt != nil {
				t.Errorf("Open(%q): err = %v, want ErrNotFound", id, err)
			}
		}
	})
}

// TestVaultNoPlaintextInDatabase scans what a thief of the database would
// get for the content and the patient identifier.
func TestVaultNoPlaintextInDatabase(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		secret := "Zebediah-Quux-diagnosis-F32.1"
		patient := "patient-Zebediah-0042"
		fhir := records.PutRequest{
			Holder: "hosp-a", Patient: patient, Category: records.CategoryMentalHealth,
			ContentType: records.FHIRContentType,
			Content:     []byte(`{"resourceType":"Condition","subject":{"reference":"Patient/` + patient + `"},"note":[{"text":"` + secret + `"}]}`),
		}
		blob := bytes.Repeat([]byte("BINARY-SECRET-"+secret), 2000) // spills into overflow pages / TOAST
		bin := records.PutRequest{Holder: "hosp-a", Patient: patient, Category: records.CategoryImaging, ContentType: "application/dicom", Content: blob}
		a := f.put(t, fhir)
		b := f.put(t, bin)
		dump := rawDump(t, db)

		// Positive controls: the scan sees stored data at all.
		stored, err := f.store.Load(t.Context(), b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !containsAny(dump, []byte(a.Commitment)) || !containsAny(dump, stored.Ciphertext[100:164]) {
			t.Fatal("the raw dump does not contain the stored commitment and ciphertext: the scan is blind")
		}
		for _, needle := range []string{secret, patient, `"resourceType":"Condition"`, "BINARY-SECRET"} {
			if containsAny(dump, []byte(needle)) {
				t.Errorf("the raw database contains %q", needle)
			}
		}
	})
}

// TestVaultTamper alters stored rows the way an attacker with write
// access to the database could; each is an error, never plaintext.
func TestVaultTamper(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		tests := []struct {
			name    string
			tamper  func(t *testing.T, a, b records.Stored)
			wantErr error
		}{
			{"flipped ciphertext byte", func(t *testing.T, a, b records.Stored) {
				c := bytes.Clone(a.Ciphertext)
				c[len(c)/2] ^= 0x80
				f.exec(t, "UPDATE records SET ciphertext = ? WHERE id = ?", c, a.ID)
			}, records.ErrDecrypt},
			{"flipped wrapped-key byte", func(t *testing.T, a, b records.Stored) {
				w := bytes.Clone(a.WrappedKey)
				w[20] ^= 0x01
				f.exec(t, "UPDATE records SET wrapped_key = ? WHERE id = ?", w, a.ID)
			}, records.ErrDecrypt},
			{"truncated ciphertext", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET ciphertext = ? WHERE id = ?", a.Ciphertext[:10], a.ID)
			}, records.ErrDecrypt},
			{"NULL ciphertext", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET ciphertext = NULL WHERE id = ?", a.ID)
			}, records.ErrDecrypt},
			{"another record's ciphertext moved in", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET ciphertext = ? WHERE id = ?", b.Ciphertext, a.ID)
			}, records.ErrDecrypt},
			{"another record's ciphertext and wrapped key moved in", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET ciphertext = ?, wrapped_key = ? WHERE id = ?", b.Ciphertext, b.WrappedKey, a.ID)
			}, records.ErrDecrypt},
			{"wrong key version (exists)", func(t *testing.T, a, b records.Stored) {
				if _, err := f.keys.Key(ctx, "hosp-a", 2); err != nil {
					if _, err := f.keys.Create(ctx, "hosp-a"); err != nil {
						t.Fatal(err)
					}
				}
				f.exec(t, "UPDATE records SET key_version = 2 WHERE id = ?", a.ID)
			}, records.ErrDecrypt},
			{"wrong key version (missing)", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET key_version = 77 WHERE id = ?", a.ID)
			}, records.ErrNoKey},
			{"relabelled category", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET category = 'demographics' WHERE id = ?", a.ID)
			}, records.ErrDecrypt},
			{"moved to another patient", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET patient = ? WHERE id = ?", f.pseud.Pseudonym("patient-999"), a.ID)
			}, records.ErrDecrypt},
			{"moved to another holder", func(t *testing.T, a, b records.Stored) {
				if _, err := f.keys.Current(ctx, "hosp-b"); err != nil {
					t.Fatal(err)
				}
				f.exec(t, "UPDATE records SET holder = 'hosp-b', key_version = 1 WHERE id = ?", a.ID)
			}, records.ErrDecrypt},
			{"other format", func(t *testing.T, a, b records.Stored) {
				f.exec(t, "UPDATE records SET format = 2 WHERE id = ?", a.ID)
			}, records.ErrDecrypt},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := f.put(t, observation("6.5"))
				b := f.put(t, observation("9.9"))
				sa, err := f.store.Load(ctx, a.ID)
				if err != nil {
					t.Fatal(err)
				}
				sb, err := f.store.Load(ctx, b.ID)
				if err != nil {
					t.Fatal(err)
				}
				tt.tamper(t, sa, sb)
				_, pt, err := f.vault.Open(ctx, a.ID)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Open tampered record: err = %v, want %v", err, tt.wantErr)
				}
				if pt != nil {
					t.Errorf("Open returned %d bytes of plaintext with the error", len(pt))
				}
				// The untouched record still opens.
				if _, pt, err := f.vault.Open(ctx, b.ID); err != nil || !strings.Contains(string(pt), "9.9") {
					t.Errorf("untouched record: %v", err)
				}
			})
		}
	})
}

func TestVaultBadInput(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{MaxSize: 1024})
		big := `"` + strings.Repeat("QUFB", 342) + `"` // 1026 bytes decoded
		tests := []struct {
			name     string
			holder   string
			patient  string
			category string
			ct       string
			raw      string
			rt       string
			want     error
			// parseOnly: only ParseContent can tell (as raw bytes the
			// content is a valid binary record).
			parseOnly bool
		}{
			{"malformed FHIR JSON", "hosp-a", "p1", "labs", records.FHIRContentType, `{"resourceType":"Observation",}`, "", records.ErrInvalid, false},
			{"FHIR without resourceType", "hosp-a", "p1", "labs", records.FHIRContentType, `{"status":"final"}`, "", records.ErrInvalid, false},
			{"FHIR resource type mismatch", "hosp-a", "p1", "labs", records.FHIRContentType, `{"resourceType":"Observation"}`, "Patient", records.ErrInvalid, false},
			{"bad base64", "hosp-a", "p1", "imaging", "application/pdf", `"%%%"`, "", records.ErrInvalid, true},
			{"object for a binary type", "hosp-a", "p1", "imaging", "application/pdf", `{"a":1}`, "", records.ErrInvalid, true},
			{"unknown category", "hosp-a", "p1", "astrology", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"no category", "hosp-a", "p1", "", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"bad content type", "hosp-a", "p1", "labs", "pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"bad resource type name", "hosp-a", "p1", "labs", "application/fhir+xml", `"AAAA"`, "not a type", records.ErrInvalid, false},
			{"no patient", "hosp-a", "", "labs", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"patient with a newline", "hosp-a", "p1\nx", "labs", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"patient too long", "hosp-a", strings.Repeat("p", 257), "labs", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"no holder", "", "p1", "labs", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"holder with a path", "../hosp-a", "p1", "labs", "application/pdf", `"AAAA"`, "", records.ErrInvalid, false},
			{"oversize", "hosp-a", "p1", "imaging", "application/pdf", big, "", records.ErrTooLarge, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// As the API does: parse, then put.
				c, err := records.ParseContent(tt.ct, json.RawMessage(tt.raw))
				if err == nil {
					_, err = f.vault.Put(t.Context(), records.PutRequest{
						Holder: tt.holder, Patient: tt.patient, Category: records.Category(tt.category),
						ContentType: c.ContentType, Content: c.Data, ResourceType: cmpOr(tt.rt, c.ResourceType),
					})
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if msg := err.Error(); len(msg) > 300 || strings.Contains(msg, "\n") {
					t.Errorf("message is not a short client message: %q", msg)
				}
				// Put itself refuses the same request when the content
				// bypasses ParseContent.
				if !tt.parseOnly {
					_, err = f.vault.Put(t.Context(), records.PutRequest{
						Holder: tt.holder, Patient: tt.patient, Category: records.Category(tt.category),
						ContentType: tt.ct, Content: rawContent(tt.raw), ResourceType: tt.rt,
					})
					if !errors.Is(err, tt.want) {
						t.Fatalf("Put of the raw request: err = %v, want %v", err, tt.want)
					}
				}
				if n := f.count(t); n != 0 {
					t.Errorf("%d rows stored", n)
				}
				if n := len(f.log.Entries()); n != 0 {
					t.Errorf("%d ledger entries appended", n)
				}
			})
		}
	})
	t.Run("default limit", func(t *testing.T) {
		f := newFixture(t, databasetest.SQLite(t), records.Options{})
		if got := f.vault.MaxSize(); got != 16<<20 {
			t.Fatalf("MaxSize = %d", got)
		}
		req := records.PutRequest{Holder: "hosp-a", Patient: "p1", Category: records.CategoryImaging, ContentType: "application/dicom", Content: make([]byte, records.DefaultMaxSize+1)}
		if _, err := f.vault.Put(t.Context(), req); !errors.Is(err, records.ErrTooLarge) {
			t.Fatalf("16 MiB + 1: err = %v, want ErrTooLarge", err)
		}
		if records.MaxBodySize(records.DefaultMaxSize) < 4*(records.DefaultMaxSize/3) {
			t.Errorf("MaxBodySize does not admit base64 of a maximal record")
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rawContent is what a careless caller might pass straight through: the
// JSON text itself.
func rawContent(raw string) []byte {
	if raw == "" {
		return nil
	}
	return []byte(raw)
}

// TestVaultAppendFailure: an append the ledger refused leaves nothing; an
// append whose outcome is unknown (ledger.ErrUnavailable: it may still be
// committed) keeps the pending record, unlisted and unreadable, so that a
// registration committed later never lacks its record.
func TestVaultAppendFailure(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantRows int64
	}{
		{"refused", errors.New("rejected by the ledger application"), 0},
		{"outcome unknown", fmt.Errorf("quorum lost: %w", ledger.ErrUnavailable), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f := newFixture(t, db, records.Options{})
				f.log.Fail = func(ledger.Entry) error { return tc.err }
				_, err := f.vault.Put(t.Context(), observation("7.0"))
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if n := f.count(t); int64(n) != tc.wantRows {
					t.Fatalf("%d rows left after the failed append, want %d", n, tc.wantRows)
				}
				list, err := f.vault.ListByPatient(t.Context(), "patient-123")
				if err != nil || len(list) != 0 {
					t.Fatalf("ListByPatient = %v, %v", list, err)
				}
			})
		})
	}
}

// TestVaultInvisibleUntilLogged looks at the record while its
// record.registered entry is being appended.
func TestVaultInvisibleUntilLogged(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		var during []error
		f.log.Fail = func(e ledger.Entry) error {
			id := e.Body.(*ledger.RecordRegistered).RecordID
			_, err := readMeta(t.Context(), f.vault, id)
			during = append(during, err)
			_, _, err = f.vault.Open(t.Context(), id)
			during = append(during, err)
			if list, err := f.vault.ListByPatient(t.Context(), "patient-123"); err != nil || len(list) != 0 {
				during = append(during, errors.New("listed while pending"))
			}
			if _, err := f.vault.Shred(t.Context(), "hosp-a", id); !errors.Is(err, records.ErrNotFound) {
				during = append(during, errors.New("shreddable while pending"))
			}
			return nil
		}
		rec := f.put(t, observation("7.0"))
		for _, err := range during {
			if !errors.Is(err, records.ErrNotFound) {
				t.Errorf("while appending: %v, want ErrNotFound", err)
			}
		}
		if len(during) != 2 {
			t.Errorf("checks during append: %v", during)
		}
		if _, err := readMeta(t.Context(), f.vault, rec.ID); err != nil {
			t.Fatalf("after append: %v", err)
		}
	})
}

func TestVaultShred(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		a := f.put(t, records.PutRequest{Holder: "hosp-a", Patient: "patient-123", Category: records.CategoryGenomics, ContentType: "application/octet-stream", Content: bytes.Repeat([]byte("ACGT"), 8192)})
		b := f.put(t, observation("8.0"))
		before, err := f.store.Load(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if dump := rawDump(t, db); !containsAny(dump, before.WrappedKey) {
			t.Fatal("the raw dump does not contain the wrapped key before shredding: the scan is blind")
		}

		if _, err := f.vault.Shred(ctx, "hosp-b", a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("Shred by another holder: err = %v, want ErrNotFound", err)
		}
		if _, _, err := f.vault.Open(ctx, a.ID); err != nil {
			t.Fatalf("another holder's Shred changed the record: %v", err)
		}

		idx, err := f.vault.Shred(ctx, "hosp-a", a.ID)
		if err != nil {
			t.Fatal(err)
		}
		entries := f.log.Entries()
		want := ledger.Entry{
			Type: ledger.TypeRecordShredded, Version: ledger.CurrentVersion, Org: "hosp-a",
			Body: &ledger.RecordShredded{RecordID: a.ID, Holder: "hosp-a", Patient: f.pseud.Pseudonym("patient-123")},
		}
		if idx != f.log.base+uint64(len(entries)-1) {
			t.Fatalf("Shred returned index %d, the log has %d entries", idx, f.log.base+uint64(len(entries)))
		}
		if diff := cmp.Diff(want, f.log.At(idx), cmpopts.IgnoreFields(ledger.Entry{}, "Time", "Author", "Commitment")); diff != "" {
			t.Errorf("shred entry (-want +got):\n%s", diff)
		}

		if _, err := readMeta(ctx, f.vault, a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Read after shred: err = %v, want ErrNotFound", err)
		}
		if _, pt, err := f.vault.Open(ctx, a.ID); !errors.Is(err, records.ErrNotFound) || pt != nil {
			t.Errorf("Open after shred: err = %v, want ErrNotFound", err)
		}
		list, err := f.vault.ListByPatient(ctx, "patient-123")
		if err != nil || len(list) != 1 || list[0].ID != b.ID {
			t.Errorf("ListByPatient after shred = %v, %v; want only %s", list, err, b.ID)
		}
		if _, err := f.vault.Shred(ctx, "hosp-a", a.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("second Shred: err = %v, want ErrNotFound", err)
		}

		// The tombstone keeps metadata and nothing else.
		after, err := f.store.Load(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Ciphertext != nil || after.WrappedKey != nil || !after.Shredded || !after.ShredLogged || after.ShredIndex != idx || after.ShreddedAt.IsZero() {
			t.Errorf("tombstone = %+v", after)
		}
		if after.Commitment != a.Commitment {
			t.Errorf("tombstone lost the commitment")
		}
		// Even with the KEK in hand, nothing stored unwraps: the wrapped
		// key and the ciphertext are gone from the database bytes.
		if _, err := f.keys.Key(ctx, "hosp-a", a.KeyVersion); err != nil {
			t.Fatal(err)
		}
		dump := rawDump(t, db)
		if containsAny(dump, before.WrappedKey) {
			t.Error("the raw database still holds the shredded record's wrapped key")
		}
		if containsAny(dump, before.Ciphertext[1000:1064]) {
			t.Error("the raw database still holds the shredded record's ciphertext")
		}
		if _, pt, err := f.vault.Open(ctx, b.ID); err != nil || !bytes.Contains(pt, []byte("8.0")) {
			t.Errorf("other record after shred: %v", err)
		}
	})
}

func TestVaultShredAppendFailure(t *testing.T) {
	for _, finish := range []string{"retry", "recover"} {
		t.Run(finish, func(t *testing.T) {
			f := newFixture(t, databasetest.SQLite(t), records.Options{})
			ctx := t.Context()
			a := f.put(t, observation("7.0"))
			f.log.Fail = func(ledger.Entry) error { return ledger.ErrUnavailable }
			if _, err := f.vault.Shred(ctx, "hosp-a", a.ID); !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("err = %v, want ledger.ErrUnavailable", err)
			}
			// The key is destroyed already.
			if _, _, err := f.vault.Open(ctx, a.ID); !errors.Is(err, records.ErrNotFound) {
				t.Fatalf("Open after a half-done shred: err = %v", err)
			}
			f.log.Fail = nil
			var idx uint64
			switch finish {
			case "retry":
				var err error
				if idx, err = f.vault.Shred(ctx, "hosp-a", a.ID); err != nil {
					t.Fatal(err)
				}
			case "recover":
				st, err := f.vault.Recover(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.LoggedShreds != 1 {
					t.Fatalf("Recover = %+v, want one shred logged", st)
				}
				idx = f.log.base + uint64(len(f.log.Entries())-1)
			}
			e := f.log.At(idx)
			if body, ok := e.Body.(*ledger.RecordShredded); !ok || body.RecordID != a.ID {
				t.Fatalf("entry %d = %+v, want record.shredded for %s", idx, e, a.ID)
			}
			if _, err := f.vault.Shred(ctx, "hosp-a", a.ID); !errors.Is(err, records.ErrNotFound) {
				t.Errorf("Shred after completion: err = %v, want ErrNotFound", err)
			}
			if st, err := f.vault.Recover(ctx); err != nil || st.LoggedShreds != 0 {
				t.Errorf("second Recover = %+v, %v; want nothing to do", st, err)
			}
		})
	}
}

func TestVaultRecoverDeletesStalePending(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{PendingTimeout: time.Hour})
		ctx := t.Context()
		now := f.clock.Now()
		mk := func(age time.Duration) string {
			id := uuid.NewString()
			err := f.store.Create(ctx, records.Stored{
				Record:  records.Record{ID: id, Holder: "hosp-a", Patient: "ps_x", Category: records.CategoryLabs, ContentType: "text/plain", Size: 1, Commitment: strings.Repeat("0", 64), KeyVersion: 1, CreatedAt: now.Add(-age)},
				Format:  records.FormatVersion,
				Pending: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		stale := mk(2 * time.Hour)
		fresh := mk(time.Minute)
		visible := f.put(t, observation("7.0"))
		st, err := f.vault.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.DeletedPending != 1 {
			t.Errorf("deleted %d pending, want 1", st.DeletedPending)
		}
		if _, err := f.store.Meta(ctx, stale); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("stale pending record survived: %v", err)
		}
		if s, err := f.store.Meta(ctx, fresh); err != nil || !s.Pending {
			t.Errorf("fresh pending record: %+v, %v", s, err)
		}
		if _, err := readMeta(ctx, f.vault, visible.ID); err != nil {
			t.Errorf("visible record: %v", err)
		}
	})
}

func TestVaultConcurrentPuts(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		const workers, each = 6, 3
		ids := make(chan string, workers*each)
		errs := make(chan error, workers*each)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					req := observation(fmt.Sprint(w*10 + i))
					req.Holder = []string{"hosp-a", "hosp-b"}[w%2]
					r, err := f.vault.Put(t.Context(), req)
					if err != nil {
						errs <- err
						continue
					}
					ids <- r.ID
				}
			})
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		n := 0
		for id := range ids {
			if _, _, err := f.vault.Open(t.Context(), id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			n++
		}
		if n != workers*each || len(f.log.Entries()) != workers*each {
			t.Errorf("%d records, %d entries; want %d", n, len(f.log.Entries()), workers*each)
		}
		for _, org := range []string{"hosp-a", "hosp-b"} {
			if vs, _ := f.keys.Versions(t.Context(), org); len(vs) != 1 {
				t.Errorf("%s has key versions %v after concurrent first puts; want one", org, vs)
			}
		}
	})
}

// errRefused is what readMeta's authorization step answers.
var errRefused = errors.New("refused by the test")

// readMeta returns a record's metadata through Read, refusing at the
// authorization step, so that nothing is decrypted.
func readMeta(ctx context.Context, v *records.Vault, id string) (records.Record, error) {
	var seen records.Record
	_, pt, err := v.Read(ctx, id, func(r records.Record) error { seen = r; return errRefused })
	if pt != nil {
		return records.Record{}, errors.New("Read returned content although authorize refused")
	}
	if errors.Is(err, errRefused) {
		return seen, nil
	}
	if err == nil {
		return records.Record{}, errors.New("Read ignored the authorization step's refusal")
	}
	return records.Record{}, err
}

// TestVaultReadAuthorize: the authorization step sees the record before
// anything is decrypted, its error is returned as is, and it is not
// called for a record that is not visible.
func TestVaultReadAuthorize(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), records.Options{})
	rec := f.put(t, observation("7.1"))
	var calls int
	got, pt, err := f.vault.Read(t.Context(), rec.ID, func(r records.Record) error {
		calls++
		if r.ID != rec.ID || r.Holder != rec.Holder || r.Patient != rec.Patient {
			t.Errorf("authorize saw %+v, want %+v", r, rec)
		}
		return nil
	})
	if err != nil || pt == nil || got.ID != rec.ID || calls != 1 {
		t.Fatalf("Read = %+v, %d bytes, %v after %d calls", got, len(pt), err, calls)
	}
	if _, pt, err := f.vault.Read(t.Context(), rec.ID, func(records.Record) error { return errRefused }); !errors.Is(err, errRefused) || pt != nil {
		t.Errorf("refused Read = %d bytes, %v; want no content and the refusal", len(pt), err)
	}
	if _, err := f.vault.Shred(t.Context(), rec.Holder, rec.ID); err != nil {
		t.Fatal(err)
	}
	calls = 0
	if _, _, err := f.vault.Read(t.Context(), rec.ID, func(records.Record) error { calls++; return nil }); !errors.Is(err, records.ErrNotFound) || calls != 0 {
		t.Errorf("Read of a shredded record: %v after %d authorize calls; want ErrNotFound and none", err, calls)
	}
}
