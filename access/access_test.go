package access_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

var (
	hospA = access.Caller{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}}
	hospB = access.Caller{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}}
	verV  = access.Caller{Org: "ins-v", Kind: auth.KindVerifier, Scopes: []auth.Scope{auth.ScopeRecordsRead}}
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	labID   = "0b7d0a52-1d1c-4b59-8a2a-000000000001"
	notesID = "0b7d0a52-1d1c-4b59-8a2a-000000000002"
	reason  = "patient unconscious in ED, suspected DKA, need recent labs"
)

// world is a Service over fakes: hospital A holds a lab record and a note
// of patient pat-1.
type world struct {
	*access.Service
	log   *memLog
	proj  *projection
	vault *vault
	justs *justifications
	now   atomic.Pointer[time.Time]
}

func newWorld(t *testing.T, policy consent.Policy) *world {
	t.Helper()
	return newWorldWith(t, policy, false)
}

// newWorldWith is newWorld whose projection is an access.GrantMatcher
// when matching is set.
func newWorldWith(t *testing.T, policy consent.Policy, matching bool) *world {
	t.Helper()
	w := &world{log: newMemLog(t), vault: &vault{}, justs: &justifications{}}
	w.proj = &projection{log: w.log}
	var grants access.Grants = w.proj
	if matching {
		grants = matchingProjection{w.proj}
	}
	w.setNow(t0)
	w.vault.put(records.Record{ID: labID, Holder: "hosp-a", Patient: pseudonym("pat-1"), Category: "labs", ResourceType: "Observation", ContentType: "application/fhir+json"}, `{"resourceType":"Observation"}`)
	w.vault.put(records.Record{ID: notesID, Holder: "hosp-a", Patient: pseudonym("pat-1"), Category: "notes", ContentType: "application/pdf"}, "%PDF")
	w.Service = access.New(access.Config{
		Vault: w.vault, Grants: grants, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: w.proj, Policy: policy,
		Now: func() time.Time { return *w.now.Load() },
	})
	return w
}

func (w *world) setNow(t time.Time) { w.now.Store(&t) }

func (w *world) grant(t *testing.T, patient string, g consent.Grant) consent.Grant {
	t.Helper()
	stored, _, err := w.Grant(t.Context(), pseudonym(patient), g)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	return stored
}

func read(id string, c access.Caller, purpose consent.Purpose) access.ReadRequest {
	return access.ReadRequest{Caller: c, RecordID: id, Purpose: purpose, RequestID: "req-1"}
}

// TestRead: one row per case of the gated read; every decision reached
// is logged, and content comes back only with a permit.
func TestRead(t *testing.T) {
	labsForB := consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment}}
	tests := []struct {
		name    string
		grants  []consent.Grant
		policy  consent.Policy
		req     access.ReadRequest
		wantErr error
		reason  consent.Reason // "" when nothing is logged
		glass   bool
		// missing: the record does not exist; loggedID is the record ID
		// logged ("" for the one asked for).
		missing  bool
		loggedID string
	}{
		{name: "holder reads its own record", req: read(labID, hospA, consent.PurposeTreatment), reason: consent.ReasonPermitHolder},
		{name: "holder needs no purpose", req: read(labID, hospA, ""), reason: consent.ReasonPermitHolder},
		{name: "permit by grant", grants: []consent.Grant{labsForB}, req: read(labID, hospB, consent.PurposeTreatment), reason: consent.ReasonPermitGrant},
		{name: "no grant is not found", req: read(labID, hospB, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNoGrant},
		{name: "grant for another purpose", grants: []consent.Grant{labsForB}, req: read(labID, hospB, consent.PurposePayment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyPurpose},
		{name: "grant for another category", grants: []consent.Grant{labsForB}, req: read(notesID, hospB, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNoGrant},
		{name: "grant naming another org", grants: []consent.Grant{labsForB}, req: read(labID, verV, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNoGrant},
		{name: "missing record is a logged not-found", req: read("0b7d0a52-1d1c-4b59-8a2a-00000000dead", hospB, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true},
		{name: "missing record asked for by a holder", req: read("0b7d0a52-1d1c-4b59-8a2a-00000000dead", hospA, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true},
		{name: "malformed ID is a logged not-found", req: read("../../etc/passwd\n", hospB, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true, loggedID: "invalid-id"},
		{name: "oversized ID is a logged not-found", req: read(strings.Repeat("a", 129), hospB, consent.PurposeTreatment), wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true, loggedID: "invalid-id"},
		{name: "federated read naming the holder", grants: []consent.Grant{labsForB}, req: access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeTreatment, RequestID: "req-1", Holder: "hosp-a"}, reason: consent.ReasonPermitGrant},
		{name: "federated read naming another holder is a not-found logged under it", grants: []consent.Grant{labsForB}, req: access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeTreatment, RequestID: "req-1", Holder: "hosp-c"}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true},
		{name: "federated read of a missing record is logged under the named holder", req: access.ReadRequest{Caller: hospB, RecordID: "0b7d0a52-1d1c-4b59-8a2a-00000000dead", Purpose: consent.PurposeTreatment, RequestID: "req-1", Holder: "hosp-a"}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyNotFound, missing: true},
		{name: "break-glass", policy: consent.DefaultPolicy(), req: access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: reason}, reason: consent.ReasonPermitBreakGlass, glass: true},
		{name: "break-glass with a short reason", policy: consent.DefaultPolicy(), req: access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: "unconscious"}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyBreakGlassJustification, glass: true},
		{name: "break-glass for a kind the policy excludes", policy: consent.DefaultPolicy(), req: access.ReadRequest{Caller: verV, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: reason}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyBreakGlassKind, glass: true},
		{name: "break-glass disabled", req: access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: reason}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyBreakGlassKind, glass: true},
		{name: "break-glass against the patient's deny", policy: consent.DefaultPolicy(),
			grants: []consent.Grant{{Grantee: consent.Grantee{Kind: auth.KindHospital}, Effect: consent.Deny, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeEmergencyTreatment}}},
			req:    access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: reason}, wantErr: access.ErrNotFound, reason: consent.ReasonDenyExplicit, glass: true},
	}
	for _, stream := range []bool{false, true} {
		for _, matching := range []bool{false, true} {
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s/matching=%v/stream=%v", tt.name, matching, stream), func(t *testing.T) {
					w := newWorldWith(t, tt.policy, matching)
					for _, g := range tt.grants {
						w.grant(t, "pat-1", g)
					}
					before := len(w.log.decoded(t, ledger.TypeAccessDecided))
					w.proj.resetCalls()
					res, err := readVia(t, w.Service, stream, tt.req)
					if err != tt.wantErr { // deny and missing are the very same error
						t.Fatalf("Read: err = %v, want %v", err, tt.wantErr)
					}
					wantDecrypted := 0
					if err == nil {
						wantDecrypted = 1
					}
					if (err == nil) != (res.Content != nil) || w.vault.decryptedCount() != wantDecrypted {
						t.Errorf("content %q with err %v after %d decryptions", res.Content, err, w.vault.decryptedCount())
					}
					if err == nil && res.Record.ID != tt.req.RecordID {
						t.Errorf("record %+v", res.Record)
					}
					logged := w.log.decoded(t, ledger.TypeAccessDecided)[before:]
					if tt.reason == "" {
						if len(logged) != 0 || res.Logged {
							t.Fatalf("logged %+v for a read that reached no decision", logged)
						}
						return
					}
					if len(logged) != 1 || !res.Logged {
						t.Fatalf("logged %d entries (Logged %v), want 1", len(logged), res.Logged)
					}
					ad := logged[0].Body.(*ledger.AccessDecided)
					want := &ledger.AccessDecided{
						Requester: tt.req.Caller.Org, RecordID: tt.req.RecordID, Patient: pseudonym("pat-1"),
						Category: ad.Category, Purpose: string(tt.req.Purpose), Decision: string(res.Decision.Effect),
						Reason: string(tt.reason), GrantID: res.Decision.GrantID, BreakGlass: tt.glass, RequestID: tt.req.RequestID,
					}
					if tt.req.RequestID == "" {
						// The service names the request itself.
						if ad.RequestID == "" {
							t.Error("no request ID logged")
						}
						want.RequestID = ad.RequestID
					}
					if tt.missing {
						want.Patient, want.Category, want.Decision = "", "", string(consent.Deny)
						if tt.loggedID != "" {
							want.RecordID = tt.loggedID
						}
					}
					// Every path loads the grants once, as a denied read does:
					// the holder's own read and a missing record too.
					if got := w.proj.grantsForCalls(); got != 1 {
						t.Errorf("the read loaded grants %d times, want 1", got)
					}
					// With an index, the read decides on it.
					if got, want := w.proj.matchingCalls(), map[bool]int{false: 0, true: 1}[matching]; got != want {
						t.Errorf("GrantsMatching called %d times, want %d", got, want)
					}
					if tt.req.Justification != "" {
						// A salted commitment whose opening the store keeps.
						want.JustificationCommitment = ad.JustificationCommitment
						o, ok := w.justs.byC[ad.JustificationCommitment]
						if !ok || o.Reason != tt.req.Justification || ledger.JustificationCommitment(o.Salt, o.Reason).String() != ad.JustificationCommitment {
							t.Errorf("no opening of commitment %q for the reason", ad.JustificationCommitment)
						}
					}
					if diff := cmp.Diff(want, ad); diff != "" {
						t.Errorf("access.decided (-want +got):\n%s", diff)
					}
					// The holder decides and logs; a read of a missing record is
					// logged for the caller.
					wantOrg := "hosp-a"
					if tt.missing {
						wantOrg = tt.req.Caller.Org
						if tt.req.Holder != "" {
							wantOrg = tt.req.Holder // federated: the caller is homed elsewhere
						}
					}
					if logged[0].Org != wantOrg || res.Decision.Reason != tt.reason {
						t.Errorf("entry org %q (want %q), decision %+v", logged[0].Org, wantOrg, res.Decision)
					}
					if tt.req.Justification != "" {
						// Neither the public leaf nor the opening any party gets
						// holds the reason: only its commitment.
						op, err := w.log.Open(t.Context(), res.Index)
						if err != nil {
							t.Fatal(err)
						}
						b, err := ledger.EncodeOpening(op.Opening)
						if err != nil {
							t.Fatal(err)
						}
						for _, raw := range [][]byte{op.Leaf, op.Header, b} {
							if strings.Contains(string(raw), "unconscious") {
								t.Errorf("the ledger holds the justification text: %s", raw)
							}
						}
						if !strings.Contains(string(b), ad.JustificationCommitment) {
							t.Errorf("the opening lacks the justification commitment: %s", b)
						}
					}
				})
			}
		}
	}
}

// readVia is Read, or ReadStream with its body read whole into
// Result.Content (and closed).
func readVia(t *testing.T, svc *access.Service, stream bool, req access.ReadRequest) (access.Result, error) {
	t.Helper()
	if !stream {
		res, err := svc.Read(t.Context(), req)
		if res.Body != nil {
			t.Errorf("Read set a body")
		}
		return res, err
	}
	res, err := svc.ReadStream(t.Context(), req)
	if res.Content != nil {
		t.Errorf("ReadStream set Content")
	}
	if (err == nil) != (res.Body != nil) {
		t.Fatalf("ReadStream: body %v with err %v", res.Body, err)
	}
	if res.Body != nil {
		b, rerr := io.ReadAll(res.Body)
		if rerr != nil {
			t.Fatalf("read the body: %v", rerr)
		}
		if cerr := res.Body.Close(); cerr != nil {
			t.Fatalf("close the body: %v", cerr)
		}
		res.Body, res.Content = nil, b
	}
	return res, err
}

// TestReadLogFailure: when the decision cannot be logged nothing is
// decrypted or served, and the ledger's error comes back.
func TestReadLogFailure(t *testing.T) {
	for i, c := range []access.Caller{hospA, hospB, hospA, hospB} {
		stream := i >= 2 // ReadStream
		w := newWorld(t, consent.Policy{})
		w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}})
		w.log.setFail(func(ledger.Entry) error { return errors.Join(ledger.ErrUnavailable, errAppend) })
		res, err := readVia(t, w.Service, stream, read(labID, c, consent.PurposeTreatment))
		if !errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: err = %v, want the ledger's unavailability", c.Org, err)
		}
		if res.Content != nil || res.Logged || w.vault.decryptedCount() != 0 {
			t.Errorf("%s: served %q (logged %v, %d decryptions) without a durable entry", c.Org, res.Content, res.Logged, w.vault.decryptedCount())
		}
	}
}

// TestGrantExpiry: a grant stops permitting at NotAfter on the service's
// clock, and the deny names it.
func TestGrantExpiry(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	g := w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}, NotAfter: t0.Add(time.Hour)})
	if _, err := w.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment)); err != nil {
		t.Fatalf("read in the period: %v", err)
	}
	w.setNow(t0.Add(time.Hour))
	res, err := w.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment))
	if err != access.ErrNotFound || res.Decision.Reason != consent.ReasonDenyExpired || res.Decision.GrantID != g.ID {
		t.Errorf("read at NotAfter: %v %+v, want deny.expired naming %s", err, res.Decision, g.ID)
	}
}

// TestReadable: listings show the holder's own records and those a grant
// covers for the purpose, nothing else.
func TestReadable(t *testing.T) {
	w := newWorld(t, consent.DefaultPolicy())
	list := func(c access.Caller, patient string, p consent.Purpose) []string {
		t.Helper()
		recs, err := w.Readable(t.Context(), access.ListRequest{Caller: c, Patient: patient, Purpose: p})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return ids
	}
	before, _ := w.log.Size(t.Context())
	if got := list(hospB, "pat-1", consent.PurposeTreatment); len(got) != 0 {
		t.Errorf("before a grant hospital B lists %v", got)
	}
	if diff := cmp.Diff([]string{labID, notesID}, list(hospA, "pat-1", consent.PurposeTreatment)); diff != "" {
		t.Errorf("the holder's listing (-want +got):\n%s", diff)
	}
	if got := list(hospB, "pat-1", consent.PurposeEmergencyTreatment); len(got) != 0 {
		t.Errorf("break-glass applies to listings: %v", got)
	}
	w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment}})
	if diff := cmp.Diff([]string{labID}, list(hospB, "pat-1", consent.PurposeTreatment)); diff != "" {
		t.Errorf("after a labs grant (-want +got):\n%s", diff)
	}
	if got := list(hospB, "pat-1", consent.PurposePayment); len(got) != 0 {
		t.Errorf("for another purpose hospital B lists %v", got)
	}
	if got := list(hospB, "pat-2", consent.PurposeTreatment); len(got) != 0 {
		t.Errorf("another patient: %v", got)
	}
	if n := len(w.log.decoded(t, ledger.TypeAccessDecided)); n != 0 {
		t.Errorf("listings logged %d access decisions (log had %d entries)", n, before)
	}
	w.vault.listErr = errAppend
	if _, err := w.Readable(t.Context(), access.ListRequest{Caller: hospB, Patient: "pat-1"}); !errors.Is(err, errAppend) {
		t.Errorf("vault failure: %v", err)
	}
}

// TestRevocationOrdering: readers race a revocation. Once Revoke returns,
// no read may be permitted and no permit under the grant may be logged
// after the revocation's entry. The test counts the reads that really
// overlapped the revocation (began before it was acknowledged and ended
// after it began) and fails if none did: the revocation's append waits
// until some reader has begun a read while it is in progress.
func TestRevocationOrdering(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	g := w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment}})

	var (
		revoking    atomic.Bool  // the revocation's append has begun
		acked       atomic.Bool  // Revoke returned
		inFlight    atomic.Int64 // reads begun and not ended
		caught      = make(chan struct{}, 1)
		overlapped  atomic.Int64 // reads that began before the ack and ended after the revocation began
		servedAfter atomic.Int64 // reads that began after the ack and were served
		afterAck    atomic.Int64 // reads that began after the ack
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		readerErrs  = make(chan error, 8)
	)
	// The revocation's append (under the patient's exclusive stripe) goes
	// on only once a read is in flight: one that began before revoking was
	// set and has not ended, or one that began after (and says so). A
	// reader raises inFlight before it looks at revoking and the append
	// sets revoking before it looks at inFlight, so one of them sees the
	// other.
	w.log.setFail(func(e ledger.Entry) error {
		if e.Type != ledger.TypeConsentRevoked {
			return nil
		}
		revoking.Store(true)
		if inFlight.Load() == 0 {
			select {
			case <-caught:
			case <-t.Context().Done():
			}
		}
		return nil
	})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				startedAfterAck := acked.Load()
				inFlight.Add(1)
				if revoking.Load() {
					select {
					case caught <- struct{}{}:
					default:
					}
				}
				res, err := w.Read(t.Context(), read(labID, hospB, consent.PurposeTreatment))
				inFlight.Add(-1)
				if err != nil && err != access.ErrNotFound {
					readerErrs <- err
					return
				}
				if !startedAfterAck && revoking.Load() {
					overlapped.Add(1)
				}
				if startedAfterAck {
					if afterAck.Add(1); res.Content != nil {
						servedAfter.Add(1)
					}
				}
			}
		}()
	}
	_, rc, err := w.Revoke(t.Context(), pseudonym("pat-1"), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	acked.Store(true)
	// Let every reader finish at least a few reads begun after the ack.
	for afterAck.Load() < 16 {
		select {
		case err := <-readerErrs:
			t.Fatal(err)
		default:
		}
		if t.Context().Err() != nil {
			t.Fatal("readers stopped")
		}
		runtimeGosched()
	}
	close(stop)
	wg.Wait()
	if overlapped.Load() == 0 {
		t.Fatal("no read overlapped the revocation: the test proved nothing")
	}
	if n := servedAfter.Load(); n != 0 {
		t.Errorf("%d reads begun after the revocation was acknowledged were served", n)
	}
	for _, e := range w.log.decodedFrom(t, rc.Index+1) {
		if ad, ok := e.Body.(*ledger.AccessDecided); ok && ad.Decision == "permit" && ad.GrantID == g.ID {
			t.Errorf("permit under the revoked grant logged after the revocation at %d", rc.Index)
		}
	}
	t.Logf("%d reads overlapped the revocation, %d began after it", overlapped.Load(), afterAck.Load())
}

// TestBreakGlassJustification: a break-glass reason reaches the ledger
// only as a salted commitment that a dictionary of candidate reasons
// cannot match (neither by their plain SHA-256, nor by the commitment
// function without the salt); the opening is stored first, shown to
// regulators, and an oversized reason or a failed store logs nothing.
func TestBreakGlassJustification(t *testing.T) {
	const templated = "pt unconscious, ED, need labs"
	w := newWorld(t, consent.DefaultPolicy())
	var commitments []string
	for range 2 {
		res, err := w.Read(t.Context(), access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: templated})
		if err != nil || !res.Decision.BreakGlass {
			t.Fatalf("break-glass read: %v %+v", err, res.Decision)
		}
		es := w.log.decoded(t, ledger.TypeAccessDecided)
		commitments = append(commitments, es[len(es)-1].Body.(*ledger.AccessDecided).JustificationCommitment)
	}
	if commitments[0] == commitments[1] {
		t.Errorf("the same reason twice gives the same published value %s: not salted", commitments[0])
	}
	dictionary := []string{templated, "unconscious", "patient unconscious", "emergency", "pt unconscious, ED, need labs "}
	for _, c := range commitments {
		for _, guess := range dictionary {
			plain := sha256.Sum256([]byte(guess))
			if c == hex.EncodeToString(plain[:]) || c == ledger.JustificationCommitment(ledger.Salt{}, guess).String() {
				t.Errorf("published value %s matches the guess %q", c, guess)
			}
		}
		if o, ok := w.justs.byC[c]; !ok || o.Reason != templated {
			t.Errorf("no opening kept for %s", c)
		}
	}
	// Regulators see the reason, opened from the commitment.
	store := &queryStore{projection: w.proj, events: []consent.AccessEvent{
		{Index: 1, JustificationCommitment: commitments[0], BreakGlass: true},
		{Index: 2},
		{Index: 3, JustificationCommitment: strings.Repeat("ab", 32), BreakGlass: true}, // no opening kept
	}}
	q := access.NewQueries(access.QueriesConfig{Store: store, Pseud: fakePseud{}, Log: w.log, Sync: w.proj, Openings: w.justs})
	reg := auth.Principal{Org: "reg-r", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	evs, _, err := q.AuditEvents(t.Context(), reg, consent.AuditFilter{}, consent.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Justification != templated || evs[1].Justification != "" || evs[2].Justification != "" {
		t.Errorf("regulator's events %+v", evs)
	}
	// The patient's access log never carries it.
	store.events[0].Patient = pseudonym("pat-1")
	log, _, err := q.AccessLog(t.Context(), auth.Principal{Patient: "pat-1"}, "", consent.Page{})
	if err != nil || len(log) != 1 || log[0].Justification != "" {
		t.Errorf("patient's access log %+v, %v", log, err)
	}

	// An oversized reason is bad input: nothing logged, nothing kept.
	before, _ := w.log.Size(t.Context())
	_, err = w.Read(t.Context(), access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: strings.Repeat("x", ledger.MaxJustificationLength+1)})
	var je *access.JustificationError
	if !errors.As(err, &je) || !errors.Is(err, access.ErrInvalidJustification) {
		t.Errorf("oversized reason: %v", err)
	}
	// A store that cannot keep the opening fails the read before any
	// decision is logged.
	w.justs.fail = errors.New("store down")
	if _, err := w.Read(t.Context(), access.ReadRequest{Caller: hospB, RecordID: labID, Purpose: consent.PurposeEmergencyTreatment, Justification: templated}); !errors.Is(err, w.justs.fail) {
		t.Errorf("failed store: %v", err)
	}
	if after, _ := w.log.Size(t.Context()); after != before || w.vault.decryptedCount() != 2 {
		t.Errorf("refused reads appended %d entries, decrypted %d", after-before, w.vault.decryptedCount())
	}
}

// registrations is access.Registrations over a fixed list.
type registrations struct {
	recs []records.Record
	err  error
}

func (r *registrations) Registered(_ context.Context, patient string) ([]records.Record, error) {
	var out []records.Record
	for _, rec := range r.recs {
		if rec.Patient == pseudonym(patient) {
			out = append(out, rec)
		}
	}
	return out, r.err
}

// TestLocate: the locator's listing adds the records registered by other
// holders to the vault's, decided on the same grants (a caller lists its
// own records wherever, and others' only under a grant); a record held
// here is listed as the vault has it; without Registrations Locate is
// Readable; a failing index fails the listing.
func TestLocate(t *testing.T) {
	w := newWorld(t, consent.DefaultPolicy())
	regs := &registrations{recs: []records.Record{
		{ID: labID, Holder: "hosp-a", Patient: pseudonym("pat-1"), Category: "labs", ContentType: "from-the-entry"}, // held here
		{ID: "rec-c-labs", Holder: "hosp-c", Patient: pseudonym("pat-1"), Category: "labs", ResourceType: "Observation", LedgerIndex: 7},
		{ID: "rec-c-notes", Holder: "hosp-c", Patient: pseudonym("pat-1"), Category: "notes", LedgerIndex: 8},
		{ID: "rec-b-labs", Holder: "hosp-b", Patient: pseudonym("pat-1"), Category: "labs", LedgerIndex: 9},
		{ID: "rec-c-other", Holder: "hosp-c", Patient: pseudonym("pat-2"), Category: "labs", LedgerIndex: 10},
	}}
	svc := access.New(access.Config{
		Vault: w.vault, Grants: w.proj, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: w.proj,
		Policy: consent.DefaultPolicy(), Now: func() time.Time { return t0 }, Registrations: regs,
	})
	list := func(s *access.Service, c access.Caller, patient string) []string {
		t.Helper()
		recs, err := s.Locate(t.Context(), access.ListRequest{Caller: c, Patient: patient, Purpose: consent.PurposeTreatment})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Holder+"/"+r.ID+" "+r.ContentType)
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff([]string{"hosp-b/rec-b-labs "}, list(svc, hospB, "pat-1")); diff != "" {
		t.Errorf("before a grant hospital B locates (-want +got):\n%s", diff)
	}
	w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead}, Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment}})
	want := []string{"hosp-a/" + labID + " application/fhir+json", "hosp-b/rec-b-labs ", "hosp-c/rec-c-labs "}
	if diff := cmp.Diff(want, list(svc, hospB, "pat-1")); diff != "" {
		t.Errorf("after a labs grant (-want +got):\n%s", diff)
	}
	if got := list(svc, hospB, "pat-3"); len(got) != 0 {
		t.Errorf("a patient with nothing: %v", got)
	}
	if diff := cmp.Diff([]string{"hosp-a/" + labID + " application/fhir+json"}, list(w.Service, hospB, "pat-1")); diff != "" {
		t.Errorf("without Registrations (-want +got):\n%s", diff)
	}
	if got, _ := svc.Readable(t.Context(), access.ListRequest{Caller: hospB, Patient: "pat-1", Purpose: consent.PurposeTreatment}); len(got) != 1 {
		t.Errorf("Readable lists only what is held here: %v", got)
	}
	if n := len(w.log.decoded(t, ledger.TypeAccessDecided)); n != 0 {
		t.Errorf("listings logged %d access decisions", n)
	}
	regs.err = errAppend
	if _, err := svc.Locate(t.Context(), access.ListRequest{Caller: hospB, Patient: "pat-1"}); !errors.Is(err, errAppend) {
		t.Errorf("index failure: %v", err)
	}
}
