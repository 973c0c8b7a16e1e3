package records_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// lateLog is a consortium ledger as a gateway sees it when the quorum is
// lost: while holding, an append is accepted into a mempool (held) and
// fails with ledger.ErrUnavailable, although the entry may commit later
// (commit) or be lost (drop). Otherwise it appends to the memLog at once.
type lateLog struct {
	log *memLog

	mu      sync.Mutex
	holding bool
	held    []ledger.Entry
	// ackLost: an append is committed at once, but its caller hears
	// ledger.ErrUnavailable (the acknowledgement was lost).
	ackLost bool
}

func (l *lateLog) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	l.mu.Lock()
	if l.ackLost {
		l.mu.Unlock()
		if _, err := l.log.Append(ctx, e); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("append: %w (acknowledgement lost)", ledger.ErrUnavailable)
	}
	if l.holding {
		l.held = append(l.held, e)
		l.mu.Unlock()
		return 0, fmt.Errorf("append: entry not committed: %w (no quorum)", ledger.ErrUnavailable)
	}
	l.mu.Unlock()
	return l.log.Append(ctx, e)
}

func (l *lateLog) hold(on bool) {
	l.mu.Lock()
	l.holding = on
	l.mu.Unlock()
}

// commit appends the held entries: the quorum is back.
func (l *lateLog) commit(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.mu.Unlock()
	for _, e := range held {
		if _, err := l.log.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// drop loses the held entries (the mempools that had them restarted).
func (l *lateLog) drop() {
	l.mu.Lock()
	l.held = nil
	l.mu.Unlock()
}

func (l *lateLog) heldCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// follower applies the memLog to the store's registrations: the
// gateway's projection follower, and Options.Sync.
type follower struct {
	f *fixture
}

func (s follower) SyncHead(ctx context.Context) error {
	n, err := s.f.log.Size(ctx)
	if err != nil {
		return err
	}
	return ledger.NewFollower(&s.f.log.MemLog, s.f.store).Sync(ctx, n)
}

// newLateFixture is a fixture whose vault appends through a lateLog and
// catches up with the log through the store's registrations projection.
func newLateFixture(t *testing.T, db *gorm.DB, opts records.Options) (*fixture, *lateLog) {
	t.Helper()
	f := newFixture(t, db, opts)
	late := &lateLog{log: f.log}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	opts.Sync = follower{f}
	f.vault = records.NewVault(f.store, f.keys, late, f.pseud, opts)
	return f, late
}

// registrations returns the record.registered bodies in the log for id.
func (f *fixture) registrations(id string) []*ledger.RecordRegistered {
	var out []*ledger.RecordRegistered
	for _, e := range f.log.Entries() {
		if b, ok := e.Body.(*ledger.RecordRegistered); ok && b.RecordID == id {
			out = append(out, b)
		}
	}
	return out
}

func withID(r records.PutRequest, id string) records.PutRequest {
	r.ID = id
	return r
}

// TestVaultPutCommittedLate: a registration answered "unavailable" is
// committed after all. The pending record was kept, so the registration
// has its record: the follower publishes it, and a retry with the same
// ID returns it without appending anything.
func TestVaultPutCommittedLate(t *testing.T) {
	for _, resolve := range []string{"follower", "retry", "ack lost"} {
		t.Run(resolve, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f, late := newLateFixture(t, db, records.Options{})
				ctx := t.Context()
				id := uuid.NewString()
				req := withID(observation("7.0"), id)

				late.hold(true)
				if resolve == "ack lost" {
					late.mu.Lock()
					late.holding, late.ackLost = false, true
					late.mu.Unlock()
				}
				if _, err := f.vault.Put(ctx, req); !errors.Is(err, ledger.ErrUnavailable) {
					t.Fatalf("Put without quorum: %v, want ErrUnavailable", err)
				}
				pending, err := f.store.Meta(ctx, id)
				if err != nil || !pending.Pending {
					t.Fatalf("after the unknown outcome: %+v, %v; want the record kept pending", pending, err)
				}
				if _, _, err := f.vault.Open(ctx, id); !errors.Is(err, records.ErrNotFound) {
					t.Fatalf("pending record readable: %v", err)
				}

				late.commit(t) // the quorum is back; the mempool's transaction commits
				late.mu.Lock()
				late.holding, late.ackLost = false, false
				late.mu.Unlock()
				if got := f.registrations(id); len(got) != 1 || got[0].Commitment != pending.Commitment {
					t.Fatalf("registrations in the log: %+v", got)
				}
				if resolve == "follower" {
					if err := (follower{f}).SyncHead(ctx); err != nil {
						t.Fatal(err)
					}
					if _, content, err := f.vault.Open(ctx, id); err != nil || !strings.Contains(string(content), "7.0") {
						t.Fatalf("after the follower applied the registration: %q, %v", content, err)
					}
				}
				size := len(f.log.Entries())
				rec, err := f.vault.Put(ctx, req)
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				if rec.ID != id || rec.LedgerIndex != f.log.base || rec.Commitment != pending.Commitment {
					t.Errorf("retry = %+v, want the record registered at %d", rec, f.log.base)
				}
				if n := len(f.log.Entries()); n != size {
					t.Errorf("the retry appended %d entries", n-size)
				}
				if list, err := f.vault.ListByPatient(ctx, "patient-123"); err != nil || len(list) != 1 {
					t.Errorf("ListByPatient = %v, %v; want the one record", list, err)
				}
				if n := f.count(t); n != 1 {
					t.Errorf("%d records stored, want 1", n)
				}
			})
		})
	}
}

// TestVaultPutRetryResubmits: the first submission was lost (never
// committed). The retry finds no registration and submits the identical
// one again: same ID, ciphertext and commitment; one record, one
// registration.
func TestVaultPutRetryResubmits(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f, late := newLateFixture(t, db, records.Options{})
		ctx := t.Context()
		id := uuid.NewString()
		req := withID(observation("7.0"), id)
		late.hold(true)
		if _, err := f.vault.Put(ctx, req); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Put: %v", err)
		}
		before, err := f.store.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		late.drop()
		late.hold(false)
		rec, err := f.vault.Put(ctx, req)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		after, err := f.store.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if after.Pending || rec.LedgerIndex != f.log.base || after.LedgerIndex != f.log.base {
			t.Errorf("retry: record %+v registered at %d, want visible at %d", after.Record, rec.LedgerIndex, f.log.base)
		}
		if diff := cmp.Diff(before.Ciphertext, after.Ciphertext); diff != "" || rec.Commitment != before.Commitment {
			t.Errorf("the retry stored other content (commitment %s, was %s)", rec.Commitment, before.Commitment)
		}
		want := []*ledger.RecordRegistered{{RecordID: id, Holder: "hosp-a", Patient: before.Patient, Category: string(records.CategoryLabs), ResourceType: "Observation", Commitment: before.Commitment, ContentType: before.ContentType, Size: before.Size}}
		if diff := cmp.Diff(want, f.registrations(id)); diff != "" {
			t.Errorf("registrations (-want +got):\n%s", diff)
		}
		if _, content, err := f.vault.Open(ctx, id); err != nil || !strings.Contains(string(content), "7.0") {
			t.Errorf("Open = %q, %v", content, err)
		}
	})
}

// TestVaultPutRetryStillUnavailable: a retry while the quorum is still
// lost is still of unknown outcome and keeps the record pending. Both
// submissions then commit: the log holds the identical registration
// twice, and the record is published once, at the first.
func TestVaultPutRetryStillUnavailable(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f, late := newLateFixture(t, db, records.Options{})
		ctx := t.Context()
		id := uuid.NewString()
		req := withID(observation("7.0"), id)
		late.hold(true)
		for attempt := range 2 {
			if _, err := f.vault.Put(ctx, req); !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("attempt %d: %v, want ErrUnavailable", attempt, err)
			}
		}
		if n := f.count(t); n != 1 {
			t.Fatalf("%d records stored, want 1", n)
		}
		if late.heldCount() != 2 {
			t.Fatalf("%d submissions held, want 2", late.heldCount())
		}
		late.commit(t)
		late.hold(false)
		regs := f.registrations(id)
		if len(regs) != 2 || !cmp.Equal(regs[0], regs[1]) {
			t.Fatalf("registrations %+v, want the same one twice", regs)
		}
		rec, err := f.vault.Put(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if rec.LedgerIndex != f.log.base {
			t.Errorf("published at %d, want the first registration (%d)", rec.LedgerIndex, f.log.base)
		}
		if list, err := f.vault.ListByPatient(ctx, "patient-123"); err != nil || len(list) != 1 {
			t.Errorf("ListByPatient = %v, %v; want one record", list, err)
		}
		if len(f.registrations(id)) != 2 {
			t.Errorf("the last retry appended")
		}
	})
}

// TestVaultPutSameIDOtherRequest: an ID fixed by one request cannot
// register another patient's record.
func TestVaultPutSameIDOtherRequest(t *testing.T) {
	f, _ := newLateFixture(t, databasetest.SQLite(t), records.Options{})
	id := uuid.NewString()
	f.put(t, withID(observation("7.0"), id))
	other := withID(observation("7.0"), id)
	other.Patient = "patient-456"
	other.Content = []byte(strings.ReplaceAll(string(other.Content), "patient-123", "patient-456"))
	if _, err := f.vault.Put(t.Context(), other); err == nil {
		t.Fatal("Put of another patient's record under a used ID succeeded")
	}
	if _, err := f.vault.Put(t.Context(), withID(observation("7.0"), "not-a-uuid")); err == nil {
		t.Fatal("Put with a malformed ID succeeded")
	}
	if n := len(f.log.Entries()); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
}

// TestVaultAppendOutcomeUnknown: every error that leaves the outcome open
// keeps the record pending; only a refusal deletes it.
func TestVaultAppendOutcomeUnknown(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("append: %w", context.DeadlineExceeded),
		fmt.Errorf("append: %w (entry not acknowledged)", ledger.ErrClosed),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			f := newFixture(t, databasetest.SQLite(t), records.Options{})
			f.log.Fail = func(ledger.Entry) error { return err }
			if _, got := f.vault.Put(t.Context(), observation("7.0")); !errors.Is(got, err) {
				t.Fatalf("Put: %v, want %v", got, err)
			}
			if n := f.count(t); n != 1 {
				t.Fatalf("%d rows, want the pending record kept", n)
			}
		})
	}
	if records.OutcomeUnknown(errors.New("rejected by the ledger application")) {
		t.Error("a refusal is an unknown outcome")
	}
}

// TestVaultRecoverUnknownOutcomes: at start, a pending record whose
// registration was committed meanwhile is published, not deleted. Of the
// others, a single node deletes the stale ones (their registration is
// known absent once the process that appended is gone); a consortium
// node (LateCommits) keeps them all, since a peer's mempool may still
// commit them.
func TestVaultRecoverUnknownOutcomes(t *testing.T) {
	for _, lateCommits := range []bool{false, true} {
		t.Run(fmt.Sprintf("LateCommits=%v", lateCommits), func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f, late := newLateFixture(t, db, records.Options{PendingTimeout: time.Hour, LateCommits: lateCommits})
				ctx := t.Context()
				committed, lost := uuid.NewString(), uuid.NewString()
				late.hold(true)
				for _, id := range []string{committed, lost} {
					if _, err := f.vault.Put(ctx, withID(observation("7.0"), id)); !errors.Is(err, ledger.ErrUnavailable) {
						t.Fatalf("Put: %v", err)
					}
				}
				late.mu.Lock()
				late.held = late.held[:1] // the first commits, the second is lost
				late.mu.Unlock()
				late.commit(t)
				late.hold(false)
				f.clock.mu.Lock()
				f.clock.now = f.clock.now.Add(2 * time.Hour) // both are stale now
				f.clock.mu.Unlock()

				st, err := f.vault.Recover(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := f.vault.Open(ctx, committed); err != nil {
					t.Errorf("the record whose registration committed: %v", err)
				}
				s, err := f.store.Meta(ctx, lost)
				switch {
				case lateCommits && (err != nil || !s.Pending):
					t.Errorf("consortium: the unresolved pending record: %+v, %v; want it kept", s, err)
				case lateCommits && st.DeletedPending != 0:
					t.Errorf("consortium: deleted %d", st.DeletedPending)
				case !lateCommits && !errors.Is(err, records.ErrNotFound):
					t.Errorf("one node: the stale pending record: %+v, %v; want it deleted", s, err)
				case !lateCommits && st.DeletedPending != 1:
					t.Errorf("one node: deleted %d, want 1", st.DeletedPending)
				}
			})
		})
	}
}

// TestVaultShredRetry: a shredding whose record.shredded was answered
// "unavailable" and committed later: a retry finds it on the ledger and
// answers with its index, appending nothing; a plain Shred of it is
// ErrNotFound, as for any record shredded before.
func TestVaultShredRetry(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f, late := newLateFixture(t, db, records.Options{})
		ctx := t.Context()
		rec := f.put(t, observation("7.0"))
		late.hold(true)
		if _, err := f.vault.Shred(ctx, "hosp-a", rec.ID); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Shred: %v", err)
		}
		late.commit(t)
		late.hold(false)
		size := len(f.log.Entries())
		idx, err := f.vault.ShredRetry(ctx, "hosp-a", rec.ID)
		if want := f.log.base + uint64(size-1); err != nil || idx != want {
			t.Fatalf("ShredRetry = %d, %v; want the late entry %d", idx, err, want)
		}
		if n := len(f.log.Entries()); n != size {
			t.Errorf("the retry appended %d entries", n-size)
		}
		if again, err := f.vault.ShredRetry(ctx, "hosp-a", rec.ID); err != nil || again != idx {
			t.Errorf("second ShredRetry = %d, %v", again, err)
		}
		if _, err := f.vault.Shred(ctx, "hosp-a", rec.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("Shred of a shredded record: %v, want ErrNotFound", err)
		}
		if _, err := f.vault.ShredRetry(ctx, "hosp-b", rec.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("ShredRetry by another holder: %v, want ErrNotFound", err)
		}
	})
}
