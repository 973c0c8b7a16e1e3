// Package routing is a consortium's sealing policy: which member gateways
// an entry's body is sealed to (docs/design/ledger-privacy.md, "Consortium
// routing"). Recipients is a pure function of the entry and what the
// authoring gateway knows (Facts), deterministic for the same inputs; the
// ledger node adds the author and pads the recipient slots.
//
// The parties, per type (every set also has the regulators: the home
// gateways of every organisation of kind regulator):
//
//   - record.registered, record.shredded: the holder's home (the author)
//     and the patient's custodian, so that it knows where the patient's
//     records are;
//   - consent.granted, consent.revoked: the custodian, the grantee's home
//     (an org grantee) or every gateway homing an org of the grantee kind
//     (a kind grantee), and the home of every holder of a record of the
//     patient (as the author knows them: at the custodian, every holder),
//     so that each holder decides from the consents addressed to it;
//   - access.decided: the holder's home (the author), the requester's home
//     and the custodian;
//   - proof.verified: the verifier's home (the author).
//
// Registry entries (gateway, org, issuer, circuit registrations and key
// rotations) travel in clear and are not routed.
package routing

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/healthgw/healthgw/ledger"
)

// KindRegulator is the org kind whose homes receive every entry.
const KindRegulator = "regulator"

// ErrNoHome: a party of an entry is an org without a registered home
// gateway.
var ErrNoHome = errors.New("routing: org has no home gateway")

// ErrNotRouted: an entry of a type the policy does not route (a registry
// entry, which travels in clear, or an unknown type).
var ErrNotRouted = errors.New("routing: entry type is not routed")

// Facts are what the policy reads besides the entry.
type Facts struct {
	// Custodian is the consortium's patient custodian gateway (the
	// patient-facing gateway: --custodian).
	Custodian string
	// Home returns an org's home gateway (ledger.Authority.Home).
	Home func(org string) (string, bool)
	// Kinds is every registered org's kind (the registry projection).
	Kinds map[string]string
	// Holders are the holder orgs of the patient's records the author
	// knows of (consents only).
	Holders []string
	// Grantee is, for a consent.revoked, the revoked grant's grantee
	// (the revocation's body names the consent only).
	Grantee *ledger.Grantee
}

// Recipients returns the gateways entry e is sealed to besides its
// author, sorted and without repeats.
func Recipients(e ledger.Entry, f Facts) ([]string, error) {
	if f.Custodian == "" {
		return nil, errors.New("routing: no custodian gateway")
	}
	if f.Home == nil {
		return nil, errors.New("routing: no org homes")
	}
	set := map[string]bool{}
	home := func(org string) error {
		g, ok := f.Home(org)
		if !ok || g == "" {
			return fmt.Errorf("%w: %q", ErrNoHome, org)
		}
		set[g] = true
		return nil
	}
	homesOfKind := func(kind string) error {
		for _, org := range slices.Sorted(maps.Keys(f.Kinds)) {
			if f.Kinds[org] == kind {
				if err := home(org); err != nil {
					return err
				}
			}
		}
		return nil
	}
	grantee := func(g ledger.Grantee) error {
		switch {
		case g.Org != "":
			return home(g.Org)
		case g.Kind != "":
			return homesOfKind(g.Kind)
		}
		return errors.New("routing: a consent without a grantee")
	}
	consent := func(g ledger.Grantee) error {
		set[f.Custodian] = true
		if err := grantee(g); err != nil {
			return err
		}
		for _, h := range f.Holders {
			if err := home(h); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch b := e.Body.(type) {
	case *ledger.RecordRegistered:
		set[f.Custodian] = true
		err = home(b.Holder)
	case *ledger.RecordShredded:
		set[f.Custodian] = true
		err = home(b.Holder)
	case *ledger.ConsentGranted:
		err = consent(b.Grantee)
	case *ledger.ConsentRevoked:
		if f.Grantee == nil {
			return nil, fmt.Errorf("routing: revocation of consent %q: its grantee is not known here", b.ConsentID)
		}
		err = consent(*f.Grantee)
	case *ledger.AccessDecided:
		set[f.Custodian] = true
		if err = home(e.Org); err == nil {
			err = home(b.Requester)
		}
	case *ledger.ProofVerified:
		err = home(b.Verifier)
	case *ledger.PasskeyRegistered:
		// Every gateway that opens consents about the patient checks
		// their passkey assertions, and any gateway homing an org may
		// later be a consent's grantee or a holder of the patient's
		// records: the registration goes to all of them (they learn
		// that the patient of this pseudonym holds a passkey).
		set[f.Custodian] = true
		for _, org := range slices.Sorted(maps.Keys(f.Kinds)) {
			if err = home(org); err != nil {
				break
			}
		}
	default:
		return nil, fmt.Errorf("%w: %s", ErrNotRouted, e.Type)
	}
	if err != nil {
		return nil, err
	}
	if err := homesOfKind(KindRegulator); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(set)), nil
}
