package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// headFunc is a hand-written access.Head.
type headFunc func(ctx context.Context) (uint64, error)

func (f headFunc) Head(ctx context.Context) (uint64, error) { return f(ctx) }

// replicatorFunc is a hand-written access.Replicator.
type replicatorFunc func(ctx context.Context, size uint64) error

func (f replicatorFunc) WaitReplicated(ctx context.Context, size uint64) error { return f(ctx, size) }

// TestReadAtHead: a revocation another node appended (here: straight to
// the log, bypassing this Service and its projection) holds for the next
// read, because the read syncs to the head first; a head that cannot be
// reached in time is ErrNotCaughtUp, and nothing is decided or logged.
func TestReadAtHead(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	g := w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}})

	var head headFunc = func(ctx context.Context) (uint64, error) { return w.log.Size(ctx) }
	var replicated []uint64
	svc := access.New(access.Config{
		Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: w.proj,
		Head: headFunc(func(ctx context.Context) (uint64, error) { return head(ctx) }),
		Replicate: replicatorFunc(func(_ context.Context, size uint64) error {
			replicated = append(replicated, size)
			return nil
		}),
		HeadTimeout: time.Minute,
		Now:         func() time.Time { return *w.now.Load() },
	})
	if _, err := svc.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment)); err != nil {
		t.Fatalf("read under the grant: %v", err)
	}
	// Another node's revocation: in the log, not yet projected here.
	e, err := ledger.NewEntry("patient:"+g.Patient, g.RevocationBody())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.log.Append(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment)); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("read after another node's revocation = %v, want ErrNotFound", err)
	}

	// A head this node cannot reach in time.
	before, _ := w.log.Size(t.Context())
	head = func(ctx context.Context) (uint64, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	slow := access.New(access.Config{
		Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: w.proj,
		Head:        headFunc(func(ctx context.Context) (uint64, error) { return head(ctx) }),
		HeadTimeout: time.Millisecond,
	})
	res, err := slow.Read(t.Context(), read(labID, hospA, consent.PurposeTreatment))
	if !errors.Is(err, access.ErrNotCaughtUp) || !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("read behind the head = %v, want ErrNotCaughtUp (ledger.ErrUnavailable)", err)
	}
	if after, _ := w.log.Size(t.Context()); res.Logged || after != before {
		t.Errorf("a read that did not reach the head logged a decision (log %d -> %d)", before, after)
	}
	if _, err := slow.Readable(t.Context(), access.ListRequest{Caller: hospA, Patient: "pat-1"}); !errors.Is(err, access.ErrNotCaughtUp) {
		t.Errorf("listing behind the head = %v, want ErrNotCaughtUp", err)
	}

	// A revocation through the Service waits for the peers.
	head = func(ctx context.Context) (uint64, error) { return w.log.Size(ctx) }
	g2 := w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}})
	_, rc, err := svc.Revoke(t.Context(), g2.Patient, g2.ID)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if len(replicated) != 1 || replicated[0] != rc.Index+1 {
		t.Errorf("WaitReplicated calls %v, want [%d]", replicated, rc.Index+1)
	}
}
