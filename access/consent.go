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
	now := s.now()
	g.Patient = patient
	if g.ID == "" {
		g.ID = consent.NewID()
	}
	if g.NotBefore.IsZero() {
		g.NotBefore = now.Truncate(time.Second)
	}
	if g.NotAfter.IsZero() {
		g.NotAfter = g.NotBefore.Add(DefaultGrantPeriod)
	}
	g.NotBefore, g.NotAfter = g.NotBefore.UTC(), g.NotAfter.UTC()
	if err := g.Validate(consent.Rules{ValidCategory: records.ValidCategory, Now: now}); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if err := s.checkGrantee(ctx, g.Grantee); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	return s.change(ctx, patient, g.ID, g.LedgerBody())
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
	// The grant may have been made at another node.
	if err := s.atHead(ctx); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	g, err := s.cfg.Grants.Grant(ctx, id)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if err := g.CheckRevoke(patient); err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	stored, rc, err := s.change(ctx, patient, g.ID, g.RevocationBody())
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	if !stored.Revoked || stored.RevokedIndex != rc.Index {
		// Another revocation won the race; ours is in the log but was a
		// no-op for the projection.
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: revocation at %d lost to another: %w", rc.Index, consent.ErrAlreadyRevoked)
	}
	if s.cfg.Replicate != nil {
		// The revocation is committed (Append returned). Waiting for the
		// peers makes it hold at once for reads that start there after
		// this returns; a peer that is slower than the bound catches up
		// in its own atHead before it decides, so the wait's failure
		// does not fail the revocation.
		rctx, cancel := context.WithTimeout(ctx, s.cfg.HeadTimeout)
		_ = s.cfg.Replicate.WaitReplicated(rctx, rc.Index+1)
		cancel()
	}
	return stored, rc, nil
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
