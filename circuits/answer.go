package circuits

import (
	"fmt"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Satisfies reports whether an attribute value v satisfies statement s
// with parameters p, natively: what the circuit proves. An Absent value
// satisfies nothing. For Member the set must be known (p.Set), not only
// its root; without it the answer is false.
func Satisfies(s Statement, p Params, v uint64) bool {
	if v == credential.Absent {
		return false
	}
	switch s {
	case Age:
		return v <= uint64(p.Cutoff)
	case Range:
		return p.Lo <= v && v <= p.Hi
	case Member:
		return p.Set != nil && p.Set.Contains(v)
	}
	return false
}

// Answerable reports whether cred can answer ch, without the holder's
// secret (which the caller may not have): the credential is genuine, of
// the challenge's schema, valid on the challenge's date, and its
// attribute satisfies the statement. Errors: credential.ErrSignature,
// credential.ErrExpired, ErrNotSatisfied, or ErrParams for a member
// challenge that names only the set's root (the holder needs the set to
// prove, and to tell).
func (ch Challenge) Answerable(cred *credential.Credential) error {
	if err := cred.Verify(); err != nil {
		return err
	}
	if ch.Date > cred.Expiry {
		return fmt.Errorf("%w: valid through %s, the challenge is for %s", credential.ErrExpired, cred.Expiry, ch.Date)
	}
	sc := ch.Params.schema()
	if cred.Schema.ID != sc.ID {
		return fmt.Errorf("%w: credential schema %s, challenge wants %s", ErrNotSatisfied, cred.Schema.Name, sc.Name)
	}
	idx, err := sc.Index(ch.Params.Attribute)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrParams, err)
	}
	if ch.Statement == Member && ch.Params.Set == nil {
		return fmt.Errorf("%w: member needs the set, not only its root", ErrParams)
	}
	if !Satisfies(ch.Statement, ch.Params, cred.Attributes[idx]) {
		return ErrNotSatisfied
	}
	return nil
}
