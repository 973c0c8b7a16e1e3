package records_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/records"
)

// seed stores n records for hosp-a (and one for hosp-b) and returns
// hosp-a's records and their stored ciphertexts.
func seed(t *testing.T, f *fixture, n int) ([]records.Record, map[string][]byte) {
	t.Helper()
	var recs []records.Record
	cts := map[string][]byte{}
	for i := range n {
		r := f.put(t, observation(fmt.Sprint(5+i)))
		s, err := f.store.Load(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		cts[r.ID] = s.Ciphertext
	}
	other := observation("1")
	other.Holder = "hosp-b"
	f.put(t, other)
	return recs, cts
}

// checkRotated checks that every record of hosp-a opens, is under
// version to, and kept its ciphertext (nothing was re-encrypted); and
// that hosp-b was not touched.
func checkRotated(t *testing.T, f *fixture, recs []records.Record, cts map[string][]byte, to int) {
	t.Helper()
	ctx := t.Context()
	counts, err := f.store.KeyVersions(ctx, "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]int64{to: int64(len(recs))}, counts); diff != "" {
		t.Errorf("hosp-a key versions (-want +got):\n%s", diff)
	}
	for i, r := range recs {
		got, pt, err := f.vault.Open(ctx, r.ID)
		if err != nil {
			t.Fatalf("record %d after rotation: %v", i, err)
		}
		if !bytes.Contains(pt, []byte(fmt.Sprintf(`"value":%d,`, 5+i))) {
			t.Errorf("record %d: wrong content", i)
		}
		if got.KeyVersion != to {
			t.Errorf("record %d: key version %d, want %d", i, got.KeyVersion, to)
		}
		s, err := f.store.Load(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Ciphertext, cts[r.ID]) || s.Commitment != r.Commitment {
			t.Errorf("record %d: content was re-encrypted", i)
		}
	}
	if counts, err := f.store.KeyVersions(ctx, "hosp-b"); err != nil || counts[1] != 1 || len(counts) != 1 {
		t.Errorf("hosp-b key versions = %v, %v; rotation of hosp-a touched hosp-b", counts, err)
	}
}

// oldKeyOpensNothing puts each record back under version old and checks
// that it no longer opens: no data key is still wrapped under the old
// version.
func oldKeyOpensNothing(t *testing.T, f *fixture, recs []records.Record, old int) {
	t.Helper()
	for i, r := range recs {
		f.exec(t, "UPDATE records SET key_version = ? WHERE id = ?", old, r.ID)
		if _, pt, err := f.vault.Open(t.Context(), r.ID); !errors.Is(err, records.ErrDecrypt) || pt != nil {
			t.Errorf("record %d: v%d still unwraps its data key (err = %v)", i, old, err)
		}
	}
}

func TestRotate(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		recs, cts := seed(t, f, 11)
		shredded := f.put(t, observation("99"))
		if _, err := f.vault.Shred(ctx, "hosp-a", shredded.ID); err != nil {
			t.Fatal(err)
		}

		var progress []records.RotateProgress
		res, err := records.Rotate(ctx, f.store, f.keys, "hosp-a", records.RotateOptions{
			BatchSize: 4,
			Progress:  func(p records.RotateProgress) { progress = append(progress, p) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := records.RotateResult{Org: "hosp-a", To: 2, Created: true, Rewrapped: 11}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("Rotate (-want +got):\n%s", diff)
		}
		if len(progress) != 3 || progress[len(progress)-1].Rewrapped != 11 || progress[0].Total != 11 {
			t.Errorf("progress = %+v; want 3 batches ending at 11 of 11", progress)
		}
		checkRotated(t, f, recs, cts, 2)

		// New records go under the new version.
		if r := f.put(t, observation("3")); r.KeyVersion != 2 {
			t.Errorf("new record under v%d, want v2", r.KeyVersion)
		}
		oldKeyOpensNothing(t, f, recs, 1)
	})
}

// failingStore fails Rewrap on the call numbered failOn (1-based).
type failingStore struct {
	records.RewrapStore
	calls, failOn int
}

func (s *failingStore) Rewrap(ctx context.Context, rs []records.Rewrapped) (int, error) {
	s.calls++
	if s.calls == s.failOn {
		return 0, errors.New("injected fault")
	}
	return s.RewrapStore.Rewrap(ctx, rs)
}

func TestRotateResumes(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(f *fixture) (records.RewrapStore, context.Context, records.RotateOptions)
		wantErr   string
	}{
		{
			name: "injected fault in the third batch",
			interrupt: func(f *fixture) (records.RewrapStore, context.Context, records.RotateOptions) {
				return &failingStore{RewrapStore: f.store, failOn: 3}, context.Background(), records.RotateOptions{BatchSize: 3}
			},
			wantErr: "injected fault",
		},
		{
			name: "cancelled after the first batch",
			interrupt: func(f *fixture) (records.RewrapStore, context.Context, records.RotateOptions) {
				ctx, cancel := context.WithCancel(context.Background())
				return f.store, ctx, records.RotateOptions{BatchSize: 3, Progress: func(records.RotateProgress) { cancel() }}
			},
			wantErr: context.Canceled.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f := newFixture(t, db, records.Options{})
				recs, cts := seed(t, f, 10)
				store, ctx, opts := tt.interrupt(f)
				first, err := records.Rotate(ctx, store, f.keys, "hosp-a", opts)
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
					t.Fatalf("interrupted Rotate: err = %v, want %q", err, tt.wantErr)
				}
				if !first.Created || first.To != 2 || first.Rewrapped == 0 || first.Rewrapped >= 10 {
					t.Fatalf("interrupted Rotate = %+v; want v2 created and part of the keys moved", first)
				}
				counts, err := f.store.KeyVersions(t.Context(), "hosp-a")
				if err != nil {
					t.Fatal(err)
				}
				if counts[1]+counts[2] != 10 || counts[2] != int64(first.Rewrapped) {
					t.Fatalf("after interruption: %v, reported %d moved", counts, first.Rewrapped)
				}
				// Every record still opens in the half-rotated state.
				for _, r := range recs {
					if _, _, err := f.vault.Open(t.Context(), r.ID); err != nil {
						t.Fatalf("half-rotated record: %v", err)
					}
				}

				again, err := records.Rotate(t.Context(), f.store, f.keys, "hosp-a", records.RotateOptions{BatchSize: 3})
				if err != nil {
					t.Fatal(err)
				}
				want := records.RotateResult{Org: "hosp-a", To: 2, Created: false, Rewrapped: 10 - first.Rewrapped}
				if diff := cmp.Diff(want, again); diff != "" {
					t.Errorf("resumed Rotate (-want +got):\n%s", diff)
				}
				if vs, _ := f.keys.Versions(t.Context(), "hosp-a"); len(vs) != 2 {
					t.Errorf("key versions after resume: %v; want v1 and v2 only", vs)
				}
				checkRotated(t, f, recs, cts, 2)
				oldKeyOpensNothing(t, f, recs, 1)
			})
		})
	}
}

func TestRotateReportsUnreadableKeys(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), records.Options{})
	recs, _ := seed(t, f, 5)
	s, err := f.store.Load(t.Context(), recs[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	w := bytes.Clone(s.WrappedKey)
	w[len(w)-1] ^= 1
	f.exec(t, "UPDATE records SET wrapped_key = ? WHERE id = ?", w, recs[2].ID)

	res, err := records.Rotate(t.Context(), f.store, f.keys, "hosp-a", records.RotateOptions{BatchSize: 2})
	if !errors.Is(err, records.ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
	if diff := cmp.Diff([]string{recs[2].ID}, res.Failed); diff != "" || res.Rewrapped != 4 {
		t.Errorf("Rotate = %+v; want 4 moved and %s failed", res, recs[2].ID)
	}
	// Running again moves nothing more and reports the same record,
	// without creating yet another version.
	res, err = records.Rotate(t.Context(), f.store, f.keys, "hosp-a", records.RotateOptions{})
	if !errors.Is(err, records.ErrDecrypt) || res.Created || res.Rewrapped != 0 || len(res.Failed) != 1 {
		t.Errorf("second Rotate = %+v, %v", res, err)
	}
}

// TestRotateEnvironmentKeys: keys from the environment cannot be created
// by Rotate; adding the next version to the environment and running
// Rotate moves the data keys to it.
func TestRotateEnvironmentKeys(t *testing.T) {
	env := map[string]string{
		"HEALTHGW_KEK_HOSP_A_V1": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"HEALTHGW_KEK_HOSP_B_V1": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)),
	}
	f := newFixture(t, databasetest.SQLite(t), records.Options{})
	f.keys = records.NewKeystore(records.KeystoreConfig{Getenv: envMap(env)})
	f.vault = records.NewVault(f.store, f.keys, f.log, f.pseud, records.Options{})
	recs, cts := seed(t, f, 3)

	_, err := records.Rotate(t.Context(), f.store, f.keys, "hosp-a", records.RotateOptions{})
	if !errors.Is(err, records.ErrCannotCreateKey) {
		t.Fatalf("err = %v, want ErrCannotCreateKey", err)
	}
	env["HEALTHGW_KEK_HOSP_A_V2"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	f.keys = records.NewKeystore(records.KeystoreConfig{Getenv: envMap(env)}) // a restarted process
	f.vault = records.NewVault(f.store, f.keys, f.log, f.pseud, records.Options{})
	res, err := records.Rotate(t.Context(), f.store, f.keys, "hosp-a", records.RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.To != 2 || res.Rewrapped != 3 {
		t.Errorf("Rotate = %+v", res)
	}
	checkRotated(t, f, recs, cts, 2)
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
