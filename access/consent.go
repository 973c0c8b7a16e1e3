package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// DefaultGrantPeriod is a grant's validity when the patient names no end.
const DefaultGrantPeriod = 365 * 24 * time.Hour

// Receipt proves that a consent entry is in the log: the entry, a signed
// checkpoint that covers it, the inclusion proof that ties them together,
// and the root of the tree the proof is for.
type Receipt struct {
	ledger.Receipt
	RootHash tlog.Hash
}

// Grant records a patient's new grant. patient is the patient's
// pseudonym and g the provision they ask for: an empty ID gets a fresh
// one, a zero NotBefore is now (to the second), a zero NotAfter is
// NotBefore plus DefaultGrantPeriod, and Patient is set to patient. The
// grant is validated (consent.ValidationError, wrapping
// consent.ErrInvalidGrant), appended as consent.granted under the
// patient's exclusive stripe and projected before the stripe is released;
// Grant then waits for a signed checkpoint covering it and returns the
// grant as projected with its receipt.
func (s *Service) Grant(ctx context.Context, patient string, g consent.Grant) (consent.Grant, Receipt, error) {
	return s.grant(ctx, patient, g, s.now())
}

// Write fixes a consent change's identity across the attempts of one
// idempotency key (package idempotency), so that repeating the change
// never makes a second one.
type Write struct {
	// ID is the consent ID a new grant gets: the one the key's first
	// attempt fixed ("" for a fresh one, as Grant).
	ID string
	// At is when the key's first attempt began: a grant's default period
	// starts then, so that every attempt submits the same grant (zero:
	// now).
	At time.Time
	// Retry: an earlier attempt ended with its outcome unknown (a 503),
	// so its entry may be in the log, or still be committed.
	Retry bool
}

// GrantOnce is Grant of a write identified by w. A retry (w.Retry) first
// catches up with the head of the log; if the grant w.ID is there, it is
// returned with the receipt of the entry that made it and nothing is
// appended: the earlier attempt took effect. Otherwise the same grant
// (same ID, same defaults) is appended. If the earlier submission is
// committed too, the projection keeps the first of the two, which is what
// GrantOnce returns.
func (s *Service) GrantOnce(ctx context.Context, patient string, g consent.Grant, w Write) (consent.Grant, Receipt, error) {
	if w.ID == "" {
		return s.Grant(ctx, patient, g)
	}
	if !consent.ValidID(w.ID) {
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: grant: %q is not a consent ID", w.ID)
	}
	if w.Retry {
		if err := s.catchUp(ctx); err != nil {
			return consent.Grant{}, Receipt{}, err
		}
		if done, rc, ok, err := s.granted(ctx, patient, w.ID); err != nil || ok {
			return done, rc, err
		}
	}
	g.ID = w.ID
	at := w.At
	if at.IsZero() {
		at = s.now()
	}
	return s.grant(ctx, patient, g, at.UTC())
}

// granted returns grant id of patient, projected, with the receipt of
// the entry that granted it; ok is false if there is no such grant.
func (s *Service) granted(ctx context.Context, patient, id string) (consent.Grant, Receipt, bool, error) {
	g, err := s.cfg.Grants.Grant(ctx, id)
	switch {
	case errors.Is(err, consent.ErrNotFound):
		return consent.Grant{}, Receipt{}, false, nil
	case err != nil:
		return consent.Grant{}, Receipt{}, false, fmt.Errorf("access: look up grant: %w", err)
	case g.Patient != patient:
		return consent.Grant{}, Receipt{}, false, fmt.Errorf("access: grant %s is another patient's", id)
	}
	rc, err := s.receipt(ctx, g.GrantedIndex)
	if err != nil {
		return consent.Grant{}, Receipt{}, false, err
	}
	return g, rc, true, nil
}

// catchUp applies every entry this node knows is committed (Config.Head,
// or the log's size on one node) to the projections.
func (s *Service) catchUp(ctx context.Context) error {
	if s.cfg.Head != nil {
		return s.atHead(ctx)
	}
	size, err := s.cfg.Log.Size(ctx)
	if err == nil {
		err = s.cfg.Sync.Sync(ctx, size)
	}
	if err != nil {
		return fmt.Errorf("access: catch up with the ledger: %w", err)
	}
	return nil
}

// grant is Grant with the defaults taken from at.
func (s *Service) grant(ctx context.Context, patient string, g consent.Grant, at time.Time) (consent.Grant, Receipt, error) {
	if err := s.unsignedAllowed(ctx, patient); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	g, err := s.validGrant(ctx, patient, g, at)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	stored, rc, err := s.change(ctx, patient, g.ID, g.LedgerBody())
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if stored.GrantedIndex != rc.Index {
		// An earlier submission of this grant (a retried write) was
		// committed first; ours is in the log but a no-op for the
		// projection. The grant is the earlier one.
		if rc, err = s.receipt(ctx, stored.GrantedIndex); err != nil {
			return consent.Grant{}, Receipt{}, err
		}
	}
	return stored, rc, nil
}

// validGrant completes g for patient with the defaults taken from at and
// checks it (provision and grantee).
func (s *Service) validGrant(ctx context.Context, patient string, g consent.Grant, at time.Time) (consent.Grant, error) {
	now := s.now()
	g.Patient = patient
	if g.ID == "" {
		g.ID = consent.NewID()
	}
	if g.NotBefore.IsZero() {
		g.NotBefore = at.Truncate(time.Second)
	}
	if g.NotAfter.IsZero() {
		g.NotAfter = g.NotBefore.Add(DefaultGrantPeriod)
	}
	g.NotBefore, g.NotAfter = g.NotBefore.UTC(), g.NotAfter.UTC()
	if err := g.Validate(consent.Rules{ValidCategory: records.ValidCategory, Now: now}); err != nil {
		return consent.Grant{}, err
	}
	if err := s.checkGrantee(ctx, g.Grantee); err != nil {
		return consent.Grant{}, err
	}
	return g, nil
}

// GranteeKinds are the organisation kinds a grant may name, alone or as
// the kind of the one org it names: only hospitals read records (the
// records.read scope is a hospital's). A grant to a verifier or a
// regulator would be a promise nobody can use, or a later surprise.
var GranteeKinds = []auth.Kind{auth.KindHospital}

// ErrInvalidGrantee is wrapped by GranteeError: a grant names an
// organisation that is not registered, or a kind that cannot be a
// grantee. It also wraps consent.ErrInvalidGrant, so it is bad input.
var ErrInvalidGrantee = errors.New("access: invalid grantee")

// GranteeError is a grant whose grantee cannot receive it. Message is safe
// to show the patient (it names only what they sent).
type GranteeError struct {
	Field   string // grantee.org or grantee.kind
	Message string
}

func (e *GranteeError) Error() string {
	return "access: invalid grantee: " + e.Field + ": " + e.Message
}

// Is matches ErrInvalidGrantee and consent.ErrInvalidGrant.
func (e *GranteeError) Is(target error) bool {
	return target == ErrInvalidGrantee || target == consent.ErrInvalidGrant
}

// PublicMessage is the text a transport may show the caller.
func (e *GranteeError) PublicMessage() string { return e.Field + ": " + e.Message + "." }

// checkGrantee refuses a grantee that is not a registered organisation of
// a grantee kind, or a kind that is not one: an unregistered org ID must
// not be able to inherit consent by being registered later.
func (s *Service) checkGrantee(ctx context.Context, g consent.Grantee) error {
	if g.Kind != "" {
		if !slices.Contains(GranteeKinds, g.Kind) {
			return &GranteeError{Field: "grantee.kind", Message: fmt.Sprintf("must be %s: only hospitals can be granted access to records", kindList())}
		}
		return nil
	}
	org, err := s.cfg.Orgs.Org(ctx, g.Org)
	if errors.Is(err, auth.ErrUnknownOrg) {
		// The registry is a projection: in a consortium the org may have
		// been registered at another node a moment ago. Catch up once.
		size, serr := s.cfg.Log.Size(ctx)
		if serr == nil {
			serr = s.cfg.Sync.Sync(ctx, size)
		}
		if serr != nil {
			return fmt.Errorf("access: catch up the registry: %w", serr)
		}
		org, err = s.cfg.Orgs.Org(ctx, g.Org)
	}
	if errors.Is(err, auth.ErrUnknownOrg) {
		return &GranteeError{Field: "grantee.org", Message: fmt.Sprintf("no organisation %q is registered", g.Org)}
	}
	if err != nil {
		return fmt.Errorf("access: look up grantee: %w", err)
	}
	if !slices.Contains(GranteeKinds, org.Kind) {
		return &GranteeError{Field: "grantee.org", Message: fmt.Sprintf("organisation %q is a %s; only hospitals can be granted access to records", g.Org, org.Kind)}
	}
	return nil
}

func kindList() string {
	s := make([]string, len(GranteeKinds))
	for i, k := range GranteeKinds {
		s[i] = string(k)
	}
	return strings.Join(s, " or ")
}

// Revoke withdraws grant id of patient (a pseudonym): consent.ErrNotFound
// if there is no such grant or it is another patient's,
// consent.ErrAlreadyRevoked if it was revoked already (also when a
// concurrent revocation won). Otherwise it appends consent.revoked under
// the patient's exclusive stripe, projects it, and returns the revoked
// grant with the receipt. Once Revoke returns, every read decides under
// the revocation: here at once, and at other nodes of a consortium once
// they apply its block, which every read there waits for (Config.Head;
// Config.Replicate makes Revoke wait for the connected nodes first).
func (s *Service) Revoke(ctx context.Context, patient, id string) (consent.Grant, Receipt, error) {
	return s.revoke(ctx, patient, id, false)
}

// RevokeOnce is Revoke of a write identified by w (only w.Retry
// matters: the consent is named by id). A retry of a revocation whose
// earlier attempt's outcome is unknown succeeds once the grant is
// revoked, by that attempt or any other: it returns the grant with the
// receipt of the revocation in force and, if that one is in the log
// already, appends nothing. A first attempt is Revoke.
func (s *Service) RevokeOnce(ctx context.Context, patient, id string, w Write) (consent.Grant, Receipt, error) {
	return s.revoke(ctx, patient, id, w.Retry)
}

func (s *Service) revoke(ctx context.Context, patient, id string, retry bool) (consent.Grant, Receipt, error) {
	// The grant may have been made at another node; a retry's earlier
	// revocation may have been committed since (on one node too).
	catchUp := s.atHead
	if retry {
		catchUp = s.catchUp
	}
	if err := catchUp(ctx); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	g, err := s.cfg.Grants.Grant(ctx, id)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if retry && g.Revoked && g.Patient == patient {
		return s.revoked(ctx, g)
	}
	if err := g.CheckRevoke(patient); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if err := s.unsignedAllowed(ctx, patient); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	stored, rc, err := s.change(ctx, patient, g.ID, g.RevocationBody())
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if !stored.Revoked || stored.RevokedIndex != rc.Index {
		if retry && stored.Revoked {
			// The earlier attempt's revocation was committed first.
			return s.revoked(ctx, stored)
		}
		// Another revocation won the race; ours is in the log but was a
		// no-op for the projection.
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: revocation at %d lost to another: %w", rc.Index, consent.ErrAlreadyRevoked)
	}
	s.replicated(ctx, rc.Index)
	return stored, rc, nil
}

// revoked returns revoked grant g with the receipt of its revocation,
// once replicated (see Revoke).
func (s *Service) revoked(ctx context.Context, g consent.Grant) (consent.Grant, Receipt, error) {
	rc, err := s.receipt(ctx, g.RevokedIndex)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	s.replicated(ctx, rc.Index)
	return g, rc, nil
}

// replicated waits (bounded by HeadTimeout) for the connected nodes to
// apply entry index (Config.Replicate).
func (s *Service) replicated(ctx context.Context, index uint64) {
	if s.cfg.Replicate != nil {
		// The revocation is committed (Append returned). Waiting for the
		// peers makes it hold at once for reads that start there after
		// this returns; a peer that is slower than the bound catches up
		// in its own atHead before it decides, so the wait's failure
		// does not fail the revocation.
		rctx, cancel := context.WithTimeout(ctx, s.cfg.HeadTimeout)
		_ = s.cfg.Replicate.WaitReplicated(rctx, index+1)
		cancel()
	}
}

// change appends a patient's consent entry (a grant, or the revocation of
// grant id), projects it while holding the patient's stripe exclusively,
// waits for a checkpoint that covers it, and returns the grant as
// projected and the receipt.
func (s *Service) change(ctx context.Context, patient, id string, body any) (consent.Grant, Receipt, error) {
	e, err := ledger.NewEntry("patient:"+patient, body)
	if err != nil {
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: consent entry: %w", err)
	}
	idx, err := s.appendAndProject(ctx, patient, e)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	rc, err := s.receipt(ctx, idx)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	g, err := s.cfg.Grants.Grant(ctx, id)
	if err != nil {
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: projected grant: %w", err)
	}
	return g, rc, nil
}

// appendAndProject appends e and projects it while holding the patient's
// stripe exclusively, so that no read decided before the change logs
// after it, and every read after it sees it.
func (s *Service) appendAndProject(ctx context.Context, patient string, e ledger.Entry) (uint64, error) {
	mu := s.locks.of(patient)
	mu.Lock()
	defer mu.Unlock()
	idx, err := s.cfg.Log.Append(ctx, e)
	if err != nil {
		return 0, fmt.Errorf("access: append consent change: %w", err)
	}
	if err := s.cfg.Sync.Sync(ctx, idx+1); err != nil {
		return 0, fmt.Errorf("access: project consent change: %w", err)
	}
	return idx, nil
}

// receipt waits (bounded by ReceiptTimeout) for a checkpoint that covers
// entry index and proves the entry in it. A checkpoint that does not come
// in time is ledger.ErrUnavailable: the entry is durable, its receipt is
// not ready.
func (s *Service) receipt(ctx context.Context, index uint64) (Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReceiptTimeout)
	defer cancel()
	r, err := ledger.MakeReceipt(ctx, s.cfg.Log, index)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Receipt{}, fmt.Errorf("access: %w: %w", ledger.ErrUnavailable, err)
		}
		return Receipt{}, fmt.Errorf("access: %w", err)
	}
	if r.Proof == nil {
		r.Proof = tlog.RecordProof{}
	}
	root, err := ledger.TreeHash(ctx, s.cfg.Log, r.TreeSize)
	if err != nil {
		return Receipt{}, fmt.Errorf("access: receipt root: %w", err)
	}
	return Receipt{Receipt: r, RootHash: root}, nil
}
