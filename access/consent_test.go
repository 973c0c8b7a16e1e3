package access_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

var treatB = consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}}

// checkReceipt verifies a receipt against the log's checkpoint key.
func checkReceipt(t *testing.T, l *memLog, rc access.Receipt) {
	t.Helper()
	v, err := ledger.ParseVerifierKey(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(rc.Checkpoint, v, "")
	if err != nil {
		t.Fatalf("receipt checkpoint: %v", err)
	}
	if cp.Size != rc.TreeSize || cp.Hash != rc.RootHash || rc.TreeSize <= rc.Index {
		t.Errorf("receipt sizes and root %+v do not match its checkpoint %+v", rc, cp)
	}
	if err := ledger.VerifyInclusion(cp, rc.Index, rc.Entry, rc.Proof); err != nil {
		t.Errorf("receipt inclusion proof: %v", err)
	}
}

// TestGrant: a grant gets its defaults from the service's clock, is
// logged by the patient, projected and proven in the receipt.
func TestGrant(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	ps := pseudonym("pat-1")
	g, rc, err := w.Grant(t.Context(), ps, treatB)
	if err != nil {
		t.Fatal(err)
	}
	if !consent.ValidID(g.ID) || g.Patient != ps || !g.NotBefore.Equal(t0) || !g.NotAfter.Equal(t0.Add(access.DefaultGrantPeriod)) || g.GrantedIndex != rc.Index {
		t.Errorf("grant %+v (receipt at %d)", g, rc.Index)
	}
	checkReceipt(t, w.log, rc)
	es, err := w.log.Read(t.Context(), rc.Index, rc.Index+1)
	if err != nil {
		t.Fatal(err)
	}
	e := es[0]
	if e.Org != "patient:"+ps || e.Type != ledger.TypeConsentGranted {
		t.Errorf("entry %+v, want consent.granted by the patient", e)
	}
	if diff := cmp.Diff(g.LedgerBody(), e.Body); diff != "" {
		t.Errorf("entry body (-grant +entry):\n%s", diff)
	}
	// The receipt opens the entry (header and opening checked against
	// the leaf in the signed tree) and names the patient by a reference
	// only: no pseudonym, no subject.
	v, err := ledger.ParseVerifierKey(w.log.vkey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ledger.VerifyReceipt(rc.Receipt, v, "")
	if err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	body, ok := st.Body.(*ledger.ConsentGrantedV2)
	if !ok || body.ConsentID != g.ID || body.Grantee.Org != "hosp-b" || !ledger.ValidPatientRef(body.Patient) {
		t.Errorf("receipt statement %+v, want the grant to hosp-b with a patient reference", st.Body)
	}
	if strings.Contains(string(rc.Opening), ps) || strings.Contains(string(rc.Entry), ps) {
		t.Errorf("the receipt names the patient's pseudonym: %s", rc.Opening)
	}
	if o, err := ledger.DecodeOpening(rc.Opening); err != nil || o.Subject != "" {
		t.Errorf("receipt opening subject %q (%v), want none", o.Subject, err)
	}
}

// TestGrantInvalid: invalid grants are refused with a typed error whose
// public message names the field without this or any package's prefix,
// and nothing is appended.
func TestGrantInvalid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*consent.Grant)
		field  string
	}{
		{"unknown purpose", func(g *consent.Grant) { g.Purposes = []consent.Purpose{"FUN"} }, "purposes"},
		{"unknown category", func(g *consent.Grant) { g.Categories = []string{"astrology"} }, "categories"},
		{"ends before it starts", func(g *consent.Grant) { g.NotBefore, g.NotAfter = t0.Add(time.Hour), t0.Add(-time.Hour) }, "not_after"},
		{"already expired", func(g *consent.Grant) { g.NotBefore, g.NotAfter = t0.Add(-2*time.Hour), t0.Add(-time.Hour) }, "not_after"},
		{"org and kind", func(g *consent.Grant) { g.Grantee.Kind = "hospital" }, "grantee"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, consent.Policy{})
			g := treatB
			tt.mutate(&g)
			_, _, err := w.Grant(t.Context(), pseudonym("pat-1"), g)
			var ve *consent.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, consent.ErrInvalidGrant) || ve.Field != tt.field {
				t.Fatalf("err = %v, want a ValidationError of %s", err, tt.field)
			}
			msg := ve.PublicMessage()
			if !strings.HasPrefix(msg, tt.field+": ") || strings.Contains(msg, "consent") || strings.Contains(msg, "invalid grant") {
				t.Errorf("public message %q", msg)
			}
			if n, _ := w.log.Size(t.Context()); n != w.log.base {
				t.Errorf("an invalid grant appended %d entries", n-w.log.base)
			}
		})
	}
}

// TestRevoke: only the granting patient may revoke, once; the receipt
// proves the revocation, and the very next read is denied.
func TestRevoke(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	g := w.grant(t, "pat-1", treatB)
	if _, _, err := w.Revoke(t.Context(), pseudonym("pat-2"), g.ID); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("another patient revokes: %v, want not found", err)
	}
	if _, _, err := w.Revoke(t.Context(), pseudonym("pat-1"), consent.NewID()); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("unknown grant: %v, want not found", err)
	}
	size, _ := w.log.Size(t.Context())
	if size != w.log.base+1 {
		t.Errorf("refused revocations appended: size %d", size)
	}
	r, rc, err := w.Revoke(t.Context(), pseudonym("pat-1"), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Revoked || r.RevokedIndex != rc.Index {
		t.Errorf("revoked grant %+v, receipt at %d", r, rc.Index)
	}
	checkReceipt(t, w.log, rc)
	res, err := w.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment))
	if err != access.ErrNotFound || res.Decision.Reason != consent.ReasonDenyRevoked {
		t.Errorf("read after the revocation: %v %+v", err, res.Decision)
	}
	if _, _, err := w.Revoke(t.Context(), pseudonym("pat-1"), g.ID); !errors.Is(err, consent.ErrAlreadyRevoked) {
		t.Errorf("second revocation: %v, want already revoked", err)
	}
}

// TestConsentChangeFailures: a failed append or projection fails the
// change, and a log that never covers the entry with a checkpoint makes
// the receipt unavailable (the entry itself is durable).
func TestConsentChangeFailures(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	w.log.setFail(func(ledger.Entry) error { return errAppend })
	if _, _, err := w.Grant(t.Context(), pseudonym("pat-1"), treatB); !errors.Is(err, errAppend) {
		t.Errorf("failed append: %v", err)
	}
	w.log.setFail(nil)

	bad := &failingSync{err: errors.New("projection broken")}
	svc := access.New(access.Config{Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: bad})
	if _, _, err := svc.Grant(t.Context(), pseudonym("pat-1"), treatB); !errors.Is(err, bad.err) {
		t.Errorf("failed projection: %v", err)
	}

	stuck := &waitingLog{memLog: w.log, release: make(chan struct{}), waiting: make(chan struct{}, 1)}
	svc = access.New(access.Config{Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: stuck, Sync: w.proj, ReceiptTimeout: time.Millisecond})
	if _, _, err := svc.Grant(t.Context(), pseudonym("pat-1"), treatB); !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("no checkpoint in time: %v, want unavailable", err)
	}
}

type failingSync struct{ err error }

func (f *failingSync) Sync(context.Context, uint64) error { return f.err }

// waitingLog is a log that publishes a checkpoint on demand, but only when
// the test says so: WaitCheckpoint reports that it waits, then blocks
// until release is closed.
type waitingLog struct {
	*memLog
	waiting chan struct{}
	release chan struct{}
}

func (l *waitingLog) WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	select {
	case l.waiting <- struct{}{}:
	default:
	}
	select {
	case <-l.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return l.Checkpoint(ctx)
}

var _ ledger.CheckpointWaiter = (*waitingLog)(nil)

// TestGrantWaitsForCheckpoint: the receipt waits for a checkpoint that
// covers the entry (ledger.MakeReceipt through CheckpointWaiter), after
// the change is projected and the patient's stripe released: reads go on
// while the receipt is pending, and already see the grant.
func TestGrantWaitsForCheckpoint(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	l := &waitingLog{memLog: w.log, waiting: make(chan struct{}, 1), release: make(chan struct{})}
	svc := access.New(access.Config{Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: l, Sync: w.proj, Now: func() time.Time { return t0 }, ReceiptTimeout: time.Hour})
	type result struct {
		g   consent.Grant
		rc  access.Receipt
		err error
	}
	done := make(chan result, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g, rc, err := svc.Grant(t.Context(), pseudonym("pat-1"), treatB)
		done <- result{g, rc, err}
	}()
	<-l.waiting // Grant waits for the checkpoint now
	select {
	case r := <-done:
		t.Fatalf("Grant returned before a checkpoint covered its entry: %+v", r)
	default:
	}
	res, err := svc.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment))
	if err != nil || res.Decision.Reason != consent.ReasonPermitGrant {
		t.Errorf("read while the receipt is pending: %v %+v; want a permit under the new grant", err, res.Decision)
	}
	close(l.release)
	wg.Wait()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkReceipt(t, w.log, r.rc)
	if r.rc.TreeSize <= r.rc.Index {
		t.Errorf("receipt checkpoint of size %d does not cover entry %d", r.rc.TreeSize, r.rc.Index)
	}
}

// TestGrantGranteeMustExist: a grant naming an organisation that is not
// registered, one of a kind that cannot read records, or a kind other
// than hospital, is refused with a typed error (public message naming the
// field) and nothing is appended.
func TestGrantGranteeMustExist(t *testing.T) {
	for _, tt := range []struct {
		name    string
		grantee consent.Grantee
		field   string
	}{
		{"unknown org", consent.Grantee{Org: "hosp-nobody"}, "grantee.org"},
		{"a verifier", consent.Grantee{Org: "ins-v"}, "grantee.org"},
		{"a regulator", consent.Grantee{Org: "reg-r"}, "grantee.org"},
		{"every verifier", consent.Grantee{Kind: auth.KindVerifier}, "grantee.kind"},
		{"every regulator", consent.Grantee{Kind: auth.KindRegulator}, "grantee.kind"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, consent.Policy{})
			g := treatB
			g.Grantee = tt.grantee
			_, _, err := w.Grant(t.Context(), pseudonym("pat-1"), g)
			var ge *access.GranteeError
			if !errors.As(err, &ge) || !errors.Is(err, access.ErrInvalidGrantee) || !errors.Is(err, consent.ErrInvalidGrant) || ge.Field != tt.field {
				t.Fatalf("err = %v, want a GranteeError of %s", err, tt.field)
			}
			if msg := ge.PublicMessage(); !strings.HasPrefix(msg, tt.field+": ") || strings.Contains(msg, "access:") || strings.Contains(msg, "invalid grantee") {
				t.Errorf("public message %q", msg)
			}
			if n, _ := w.log.Size(t.Context()); n != w.log.base {
				t.Errorf("a refused grant appended %d entries", n-w.log.base)
			}
		})
	}
	t.Run("every hospital", func(t *testing.T) {
		w := newWorld(t, consent.Policy{})
		g := treatB
		g.Grantee = consent.Grantee{Kind: auth.KindHospital}
		if _, _, err := w.Grant(t.Context(), pseudonym("pat-1"), g); err != nil {
			t.Fatalf("grant to every hospital: %v", err)
		}
	})
	t.Run("registry unavailable", func(t *testing.T) {
		w := newWorld(t, consent.Policy{})
		broken := errors.New("registry down")
		svc := access.New(access.Config{Vault: w.vault, Grants: w.proj, Orgs: failingOrgs{broken}, Justifications: w.justs, Log: w.log, Sync: w.proj})
		_, _, err := svc.Grant(t.Context(), pseudonym("pat-1"), treatB)
		if !errors.Is(err, broken) || errors.Is(err, consent.ErrInvalidGrant) {
			t.Fatalf("err = %v, want the registry's error, not bad input", err)
		}
		if n, _ := w.log.Size(t.Context()); n != w.log.base {
			t.Errorf("appended %d entries", n-w.log.base)
		}
	})
}

type failingOrgs struct{ err error }

func (f failingOrgs) Org(context.Context, string) (auth.Org, error) { return auth.Org{}, f.err }
