package records_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/records"
)

// countingStore is a records.Store that records which of its methods are
// called, in order, and how many sealed bytes (ciphertext and wrapped
// key) it hands back.
type countingStore struct {
	records.Store
	mu     sync.Mutex
	calls  []string
	sealed int
}

func (c *countingStore) note(method string, s ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, method)
	for _, b := range s {
		c.sealed += len(b)
	}
}

// reset forgets what was counted so far.
func (c *countingStore) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.sealed = nil, 0
}

// counted returns the calls and sealed bytes since the last reset.
func (c *countingStore) counted() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...), c.sealed
}

func (c *countingStore) Create(ctx context.Context, s records.Stored) error {
	c.note("Create")
	return c.Store.Create(ctx, s)
}

func (c *countingStore) Publish(ctx context.Context, id string, idx uint64) (uint64, error) {
	c.note("Publish")
	return c.Store.Publish(ctx, id, idx)
}

func (c *countingStore) DeletePending(ctx context.Context, id string) error {
	c.note("DeletePending")
	return c.Store.DeletePending(ctx, id)
}

func (c *countingStore) DeletePendingBefore(ctx context.Context, t time.Time) (int64, error) {
	c.note("DeletePendingBefore")
	return c.Store.DeletePendingBefore(ctx, t)
}

func (c *countingStore) CountPending(ctx context.Context) (int64, error) {
	c.note("CountPending")
	return c.Store.CountPending(ctx)
}

func (c *countingStore) Meta(ctx context.Context, id string) (records.Stored, error) {
	s, err := c.Store.Meta(ctx, id)
	c.note("Meta", s.Ciphertext, s.WrappedKey)
	return s, err
}

func (c *countingStore) Content(ctx context.Context, id string) (records.SealedContent, error) {
	s, err := c.Store.Content(ctx, id)
	c.note("Content", s.Ciphertext, s.WrappedKey)
	return s, err
}

func (c *countingStore) ListByPatient(ctx context.Context, patient string) ([]records.Record, error) {
	c.note("ListByPatient")
	return c.Store.ListByPatient(ctx, patient)
}

func (c *countingStore) Shred(ctx context.Context, id string, at time.Time) error {
	c.note("Shred")
	return c.Store.Shred(ctx, id, at)
}

func (c *countingStore) LogShred(ctx context.Context, id string, idx uint64) error {
	c.note("LogShred")
	return c.Store.LogShred(ctx, id, idx)
}

func (c *countingStore) UnloggedShreds(ctx context.Context) ([]records.Stored, error) {
	c.note("UnloggedShreds")
	return c.Store.UnloggedShreds(ctx)
}

var _ records.Store = (*countingStore)(nil)

// largeRecord is a 1 MiB binary record of hosp-a.
func largeRecord() records.PutRequest {
	content := make([]byte, 1<<20)
	for i := range content {
		content[i] = byte(i * 31)
	}
	return records.PutRequest{Holder: "hosp-a", Patient: "patient-123", Category: records.CategoryImaging,
		ContentType: "application/dicom", Content: content}
}

// TestVaultReadDecidesOnMetadata: a read is decided on the record's
// metadata alone. A denied read of a large record, a denied read of a
// small one, a read of a record that does not exist and one of a
// shredded record call the store the same way (Meta once, nothing else)
// and get no sealed byte; only a permitted read loads the content
// (Content, once, after the decision).
func TestVaultReadDecidesOnMetadata(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), records.Options{})
	cs := &countingStore{Store: f.store}
	v := records.NewVault(cs, f.keys, f.log, f.pseud, records.Options{Now: f.clock.Now})
	large := largeRecord()
	big := f.put(t, large)
	small := f.put(t, observation("7.1"))
	gone := f.put(t, observation("6.0"))
	if _, err := f.vault.Shred(t.Context(), gone.Holder, gone.ID); err != nil {
		t.Fatal(err)
	}

	var (
		events []string // the decisions and store calls of one read, in order
		onDeny = func(r records.Record) error {
			calls, _ := cs.counted()
			events = append(events, calls...)
			events = append(events, "decide")
			return errRefused
		}
	)
	read := func(id string, authorize func(records.Record) error) ([]string, int, []byte, error) {
		t.Helper()
		cs.reset()
		events = nil
		_, pt, err := v.Read(t.Context(), id, authorize)
		calls, sealed := cs.counted()
		return calls, sealed, pt, err
	}

	want := []string{"Meta"}
	for _, tt := range []struct {
		name    string
		id      string
		wantErr error
		decided bool
	}{
		{"denied, 1 MiB", big.ID, errRefused, true},
		{"denied, small", small.ID, errRefused, true},
		{"missing", uuid.NewString(), records.ErrNotFound, false},
		{"shredded", gone.ID, records.ErrNotFound, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls, sealed, pt, err := read(tt.id, onDeny)
			if !errors.Is(err, tt.wantErr) || pt != nil {
				t.Fatalf("Read = %d bytes, %v; want none and %v", len(pt), err, tt.wantErr)
			}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("store calls (-want +got):\n%s", diff)
			}
			if sealed != 0 {
				t.Errorf("the store handed back %d sealed bytes; want none", sealed)
			}
			if tt.decided {
				if diff := cmp.Diff([]string{"Meta", "decide"}, events); diff != "" {
					t.Errorf("order of the lookup and the decision (-want +got):\n%s", diff)
				}
			}
		})
	}

	t.Run("permitted, 1 MiB", func(t *testing.T) {
		calls, sealed, pt, err := read(big.ID, func(records.Record) error {
			calls, _ := cs.counted()
			events = append(events, calls...)
			events = append(events, "decide")
			return nil
		})
		if err != nil || !bytes.Equal(pt, large.Content) {
			t.Fatalf("Read = %d bytes, %v; want the content", len(pt), err)
		}
		if diff := cmp.Diff([]string{"Meta", "Content"}, calls); diff != "" {
			t.Errorf("store calls (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"Meta", "decide"}, events); diff != "" {
			t.Errorf("order of the lookup and the decision (-want +got):\n%s", diff)
		}
		if sealed < len(large.Content) {
			t.Errorf("the store handed back %d sealed bytes; want at least the content's %d", sealed, len(large.Content))
		}
	})
}

// TestVaultReadChangedAfterDecision: the record changes between the
// decision and the content load. Shredded then: ErrNotFound, no content,
// and the decision was made (authorize ran once). Rewrapped under a new
// key version then (a rotation): the content opens with the version it is
// wrapped under now, and the record returned says so.
func TestVaultReadChangedAfterDecision(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), records.Options{})
	ctx := t.Context()

	shredded := f.put(t, observation("7.1"))
	decided := 0
	_, pt, err := f.vault.Read(ctx, shredded.ID, func(r records.Record) error {
		decided++
		_, err := f.vault.Shred(ctx, r.Holder, r.ID)
		return err
	})
	if !errors.Is(err, records.ErrNotFound) || pt != nil || decided != 1 {
		t.Errorf("Read of a record shredded after the decision = %d bytes, %v after %d decisions; want ErrNotFound, no content, 1 decision",
			len(pt), err, decided)
	}

	req := observation("8.2")
	rotated := f.put(t, req)
	var res records.RotateResult
	got, pt, err := f.vault.Read(ctx, rotated.ID, func(r records.Record) error {
		var err error
		res, err = records.Rotate(ctx, f.store, f.keys, r.Holder, records.RotateOptions{})
		return err
	})
	if err != nil || !bytes.Equal(pt, req.Content) {
		t.Fatalf("Read of a record rewrapped after the decision = %d bytes, %v; want the content", len(pt), err)
	}
	if res.To == rotated.KeyVersion || res.Rewrapped == 0 {
		t.Fatalf("the rotation did not rewrap the record: %+v (record under version %d)", res, rotated.KeyVersion)
	}
	if got.KeyVersion != res.To {
		t.Errorf("Read returned key version %d; the data key is under %d now", got.KeyVersion, res.To)
	}
}
