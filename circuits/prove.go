package circuits

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"

	"github.com/healthgw/healthgw/circuits/age"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/inrange"
	"github.com/healthgw/healthgw/circuits/member"
)

// ErrNotSatisfied reports a credential whose attribute does not satisfy
// the statement (for example a patient younger than the cutoff): there is
// nothing to prove.
var ErrNotSatisfied = errors.New("credential does not satisfy the statement")

// Challenge is what a verifier hands the holder: the statement and policy
// to prove, a single-use nonce, the verifier's scope and the date on which
// the credential must be valid. The server issues it (POST
// /v1/proofs/challenges) and keeps it to verify against.
type Challenge struct {
	ID        string // opaque, the server's handle
	Statement Statement
	Params    Params
	Nonce     []byte
	Scope     string
	Date      credential.Day
	ExpiresAt time.Time // zero if not given
	// Verifier is the org ID of the verifier the gateway issued the
	// challenge to; Scope must be ScopeFor(Verifier). Signature is the
	// gateway's Ed25519 signature over the rest (Sign, Check).
	Verifier  string
	Signature []byte
}

// Validate checks the challenge is complete and its params fit its
// statement.
func (ch Challenge) Validate() error {
	if err := ch.Params.Validate(ch.Statement); err != nil {
		return err
	}
	switch {
	case len(ch.Nonce) == 0:
		return fmt.Errorf("%w: challenge has no nonce", ErrPublic)
	case ch.Scope == "":
		return fmt.Errorf("%w: challenge has no scope", ErrPublic)
	case ch.Date > credential.MaxDay:
		return fmt.Errorf("%w: challenge date: %w", ErrPublic, credential.ErrDate)
	}
	return nil
}

// Proof is a holder's proof with the public inputs it was made for.
type Proof struct {
	Statement Statement
	Version   int
	Challenge string // Challenge.ID
	Public    Public
	Bytes     []byte // gnark Groth16 proof, compressed points
}

// PublicFor returns the public inputs to verify p against the verifier's
// own challenge: everything from ch, and only the issuer key and nullifier
// from the proof (the caller must check that issuer is one it accepts).
func (p *Proof) PublicFor(ch Challenge) Public {
	return Public{
		Issuer:    p.Public.Issuer,
		Params:    ch.Params,
		Date:      ch.Date,
		Scope:     ch.Scope,
		Nonce:     ch.Nonce,
		Nullifier: p.Public.Nullifier,
	}
}

// Prover proves one statement; it holds the compiled circuit and the
// proving key.
type Prover struct {
	statement Statement
	ccs       constraint.ConstraintSystem
	pk        groth16.ProvingKey
}

// Statement returns the statement p proves.
func (p *Prover) Statement() Statement { return p.statement }

// Prove proves the challenge's statement for the holder of cred, taking
// the challenge as given: a holder proving a challenge it received uses
// ProveChallenge, which checks the gateway's signature and the verifier
// binding first. It first
// checks natively that the credential is genuine, unexpired on the
// challenge date, held by secret and satisfies the statement, so that
// mistakes give a clear error (ErrNotSatisfied, credential.ErrExpired,
// credential.ErrHolder, credential.ErrSignature) instead of a solver
// failure. The secret and the credential's attributes never appear in the
// result.
func (p *Prover) Prove(cred *credential.Credential, secret credential.Secret, ch Challenge) (*Proof, error) {
	s := p.statement
	if ch.Statement != s {
		return nil, fmt.Errorf("prove: challenge is for %q, prover for %q", ch.Statement, s)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	if err := cred.Check(secret, ch.Date); err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	sc := ch.Params.schema()
	if cred.Schema.ID != sc.ID {
		return nil, fmt.Errorf("prove: %w: credential schema %s, challenge wants %s", ErrNotSatisfied, cred.Schema.Name, sc.Name)
	}
	idx, err := sc.Index(ch.Params.Attribute)
	if err != nil {
		return nil, fmt.Errorf("prove: %w: %w", ErrParams, err)
	}
	v := cred.Attributes[idx]
	pub := Public{
		Issuer:    cred.Issuer,
		Params:    ch.Params,
		Date:      ch.Date,
		Scope:     ch.Scope,
		Nonce:     ch.Nonce,
		Nullifier: secret.Nullifier(credential.ScopeElement(ch.Scope)),
	}
	a, err := pub.assignment(s)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	var g *credential.Gadget
	ok := Satisfies(s, ch.Params, v)
	switch c := a.(type) {
	case *age.Circuit:
		g = &c.Credential
	case *inrange.Circuit:
		g = &c.Credential
	case *member.Circuit:
		g = &c.Credential
		if ch.Params.Set == nil {
			return nil, fmt.Errorf("prove: %w: member needs the set, not only its root", ErrParams)
		}
		if ok {
			index, path, err := ch.Params.Set.Prove(v)
			if err != nil {
				return nil, fmt.Errorf("prove: %w", err)
			}
			c.Index = new(big.Int).SetUint64(index)
			for i := range path {
				c.Path[i] = credential.BigInt(path[i])
			}
		}
	}
	if !ok {
		return nil, fmt.Errorf("prove: %w", ErrNotSatisfied)
	}
	if err := g.Assign(cred, secret); err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("prove: witness: %w", err)
	}
	// The solver runs on GOMAXPROCS workers (gnark's default is NumCPU,
	// which ignores a container's CPU quota; Go sizes GOMAXPROCS from it).
	proof, err := groth16.Prove(p.ccs, p.pk, w, backend.WithSolverOptions(solver.WithNbTasks(runtime.GOMAXPROCS(0))))
	if err != nil {
		// Do not wrap the solver's error: it may quote witness values.
		return nil, errors.New("prove: groth16 prover failed (keys or credential do not fit the statement)")
	}
	var b bytes.Buffer
	if _, err := proof.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("prove: serialise proof: %w", err)
	}
	return &Proof{Statement: s, Version: s.Version(), Challenge: ch.ID, Public: pub, Bytes: b.Bytes()}, nil
}
