package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// Errors of patient-signed changes.
var (
	// ErrSignatureRequired: the patient has a registered passkey, so a
	// consent change about them counts only with their passkey's
	// assertion (the projection ignores one without); make it in the
	// patient app, which asks for the passkey.
	ErrSignatureRequired = errors.New("access: this patient has a passkey: consent changes must be signed with it in the patient app")
	// ErrNotSigning: the gateway is not set up for signed changes
	// (Config.Preparer is nil).
	ErrNotSigning = errors.New("access: patient-signed consent changes are not available")
	// ErrSignatureRefused: the assertion does not verify against the
	// patient's registered passkeys; nothing was appended.
	ErrSignatureRefused = errors.New("access: the passkey signature was refused")
)

// unsignedAllowed refuses an unsigned change about a patient who has a
// registered passkey.
func (s *Service) unsignedAllowed(ctx context.Context, patient string) error {
	if s.cfg.Passkeys == nil {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	ks, err := s.cfg.Passkeys.Passkeys(ctx, patient)
	if err != nil {
		return fmt.Errorf("access: look up passkeys: %w", err)
	}
	if len(ks) > 0 {
		return ErrSignatureRequired
	}
	return nil
}

// PreparedChange is a consent change (a grant or a revocation) prepared
// for the patient's passkey: Challenge is what the passkey must sign (the
// entry's commitment). It is appended by CommitSigned.
type PreparedChange struct {
	Patient string
	// ID is the consent the change is about.
	ID string
	// Revoke: a revocation, not a grant.
	Revoke bool
	// Passkey, when set, makes the change the registration of a further
	// passkey (ID is then its credential ID), signed by an existing one.
	Passkey *consent.Passkey
	p       *ledger.Prepared
}

// Challenge is the entry's commitment: the WebAuthn challenge.
func (pc *PreparedChange) Challenge() ledger.Digest { return pc.p.Commitment() }

// PrepareGrant checks grant g of patient as Grant does and prepares its
// entry for the patient's signature.
func (s *Service) PrepareGrant(ctx context.Context, patient string, g consent.Grant) (*PreparedChange, error) {
	if s.cfg.Preparer == nil {
		return nil, ErrNotSigning
	}
	g, err := s.validGrant(ctx, patient, g, s.now())
	if err != nil {
		return nil, err
	}
	return s.prepare(patient, g.ID, false, g.LedgerBody())
}

// PrepareRevoke checks the revocation of grant id by patient as Revoke
// does and prepares its entry for the patient's signature.
func (s *Service) PrepareRevoke(ctx context.Context, patient, id string) (*PreparedChange, error) {
	if s.cfg.Preparer == nil {
		return nil, ErrNotSigning
	}
	if err := s.atHead(ctx); err != nil {
		return nil, err
	}
	g, err := s.cfg.Grants.Grant(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := g.CheckRevoke(patient); err != nil {
		return nil, err
	}
	return s.prepare(patient, id, true, g.RevocationBody())
}

func (s *Service) prepare(patient, id string, revoke bool, body any) (*PreparedChange, error) {
	e, err := ledger.NewEntry(ledger.PatientOrg(patient), body)
	if err != nil {
		return nil, fmt.Errorf("access: consent entry: %w", err)
	}
	p, err := s.cfg.Preparer.Prepare(e)
	if err != nil {
		return nil, fmt.Errorf("access: prepare consent entry: %w", err)
	}
	return &PreparedChange{Patient: patient, ID: id, Revoke: revoke, p: p}, nil
}

// CommitSigned appends prepared change pc with the patient's assertion
// att, once it verifies against the patient's registered passkeys
// (ErrSignatureRefused otherwise, and nothing is appended), projects it
// and returns the grant with the change's receipt.
func (s *Service) CommitSigned(ctx context.Context, pc *PreparedChange, att ledger.Attestation) (consent.Grant, Receipt, error) {
	if s.cfg.Preparer == nil || s.cfg.Passkeys == nil {
		return consent.Grant{}, Receipt{}, ErrNotSigning
	}
	ks, err := s.cfg.Passkeys.Passkeys(ctx, pc.Patient)
	if err != nil {
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: look up passkeys: %w", err)
	}
	if _, err := consent.VerifyAssertion(ks, []ledger.Attestation{att}, pc.Challenge()); err != nil {
		return consent.Grant{}, Receipt{}, fmt.Errorf("%w: %w", ErrSignatureRefused, err)
	}
	if pc.Passkey != nil {
		return consent.Grant{}, Receipt{}, s.commitPasskey(ctx, pc, att)
	}
	mu := s.locks.of(pc.Patient)
	mu.Lock()
	idx, err := s.cfg.Preparer.AppendPrepared(ctx, pc.p, []ledger.Attestation{att})
	if err == nil {
		if err = s.cfg.Sync.Sync(ctx, idx+1); err != nil {
			err = fmt.Errorf("access: project consent change: %w", err)
		}
	} else {
		err = fmt.Errorf("access: append consent change: %w", err)
	}
	mu.Unlock()
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	rc, err := s.receipt(ctx, idx)
	if err != nil {
		return consent.Grant{}, Receipt{}, err
	}
	g, err := s.cfg.Grants.Grant(ctx, pc.ID)
	switch {
	case err != nil && !pc.Revoke && errors.Is(err, consent.ErrNotFound):
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: the signed grant at %d was not accepted by the projection", idx)
	case err != nil:
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: projected grant: %w", err)
	case pc.Revoke && (!g.Revoked || g.RevokedIndex != idx):
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: revocation at %d was a no-op: %w", idx, consent.ErrAlreadyRevoked)
	case !pc.Revoke && g.GrantedIndex != idx:
		return consent.Grant{}, Receipt{}, fmt.Errorf("access: grant %s exists already", pc.ID)
	}
	if pc.Revoke {
		s.replicated(ctx, idx)
	}
	return g, rc, nil
}

// RegisterPasskey appends the registration of passkey p for patient
// (after the WebAuthn registration ceremony) and projects it. A patient
// with a passkey already needs it to add another (ErrSignatureRequired:
// see PreparePasskey).
func (s *Service) RegisterPasskey(ctx context.Context, patient string, p consent.Passkey) (uint64, error) {
	if s.cfg.Preparer == nil {
		return 0, ErrNotSigning
	}
	if err := s.unsignedAllowed(ctx, patient); err != nil {
		return 0, err
	}
	p.Patient = patient
	e, err := ledger.NewEntry(ledger.PatientOrg(patient), p.LedgerBody())
	if err != nil {
		return 0, fmt.Errorf("access: passkey entry: %w", err)
	}
	return s.appendAndProject(ctx, patient, e)
}

// PreparePasskey prepares the registration of a further passkey p of
// patient, to be signed by one of the patient's registered passkeys.
func (s *Service) PreparePasskey(ctx context.Context, patient string, p consent.Passkey) (*PreparedChange, error) {
	if s.cfg.Preparer == nil {
		return nil, ErrNotSigning
	}
	p.Patient = patient
	pc, err := s.prepare(patient, p.CredentialID, false, p.LedgerBody())
	if err != nil {
		return nil, err
	}
	pc.Passkey = &p
	return pc, nil
}

// commitPasskey is CommitSigned of a passkey registration: the assertion
// has verified; append, project, and check the projection took it.
func (s *Service) commitPasskey(ctx context.Context, pc *PreparedChange, att ledger.Attestation) error {
	mu := s.locks.of(pc.Patient)
	mu.Lock()
	defer mu.Unlock()
	idx, err := s.cfg.Preparer.AppendPrepared(ctx, pc.p, []ledger.Attestation{att})
	if err != nil {
		return fmt.Errorf("access: append passkey registration: %w", err)
	}
	if err := s.cfg.Sync.Sync(ctx, idx+1); err != nil {
		return fmt.Errorf("access: project passkey registration: %w", err)
	}
	ks, err := s.cfg.Passkeys.Passkeys(ctx, pc.Patient)
	if err != nil {
		return fmt.Errorf("access: look up passkeys: %w", err)
	}
	for _, k := range ks {
		if k.CredentialID == pc.ID && k.Index == idx {
			return nil
		}
	}
	return fmt.Errorf("access: the passkey registration at %d was not accepted by the projection (credential registered already?)", idx)
}
