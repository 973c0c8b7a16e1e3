package circuits

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/circuits/credential"
)

// ProofFormat is the format tag of proof files.
const ProofFormat = "healthgw-zk-proof/v1"

// ErrFile reports a malformed challenge or proof file.
var ErrFile = errors.New("malformed file")

// challengeJSON is the challenge wire format (file and API body):
//
//	{
//	  "id": "<challenge id>",
//	  "statement": "age",
//	  "params": {"schema": "healthgw/patient/v1", "attribute": "birth_date", "cutoff": "2008-03-01"},
//	  "nonce": "<base64url, no padding>",
//	  "scope": "<verifier scope, e.g. the verifier's org ID>",
//	  "date": "2026-03-01",
//	  "expires_at": "2026-03-01T10:05:00Z"
//	}
type challengeJSON struct {
	ID        string            `json:"id,omitempty"`
	Statement string            `json:"statement"`
	Params    map[string]string `json:"params"`
	Nonce     string            `json:"nonce"`
	Scope     string            `json:"scope"`
	Date      string            `json:"date"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	// Verifier is the verifier's org ID; Signature the gateway's
	// signature (base64url, no padding).
	Verifier  string `json:"verifier,omitempty"`
	Signature string `json:"signature,omitempty"`
}

func (ch Challenge) wire() challengeJSON {
	j := challengeJSON{
		ID:        ch.ID,
		Statement: string(ch.Statement),
		Params:    ch.Params.Map(ch.Statement),
		Nonce:     base64.RawURLEncoding.EncodeToString(ch.Nonce),
		Scope:     ch.Scope,
		Date:      ch.Date.String(),
		Verifier:  ch.Verifier,
		Signature: base64.RawURLEncoding.EncodeToString(ch.Signature),
	}
	if !ch.ExpiresAt.IsZero() {
		t := ch.ExpiresAt.UTC()
		j.ExpiresAt = &t
	}
	return j
}

// MarshalChallenge encodes ch in the challenge wire format.
func MarshalChallenge(ch Challenge) ([]byte, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(ch.wire(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal challenge: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseChallenge decodes and validates a challenge.
func ParseChallenge(data []byte) (Challenge, error) {
	var j challengeJSON
	if err := credential.DecodeStrict(data, &j); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrFile, err)
	}
	var ch Challenge
	var err error
	ch.ID = j.ID
	if ch.Statement, err = ParseStatement(j.Statement); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if ch.Params, err = ParseParams(ch.Statement, j.Params); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if ch.Nonce, err = base64.RawURLEncoding.DecodeString(j.Nonce); err != nil {
		return Challenge{}, fmt.Errorf("%w: nonce: %w", ErrFile, err)
	}
	ch.Scope = j.Scope
	ch.Verifier = j.Verifier
	if ch.Signature, err = base64.RawURLEncoding.DecodeString(j.Signature); err != nil {
		return Challenge{}, fmt.Errorf("%w: signature: %w", ErrFile, err)
	}
	if len(ch.Signature) == 0 {
		ch.Signature = nil
	}
	if ch.Date, err = credential.ParseDay(j.Date); err != nil {
		return Challenge{}, fmt.Errorf("%w: date: %w", ErrFile, err)
	}
	if j.ExpiresAt != nil {
		ch.ExpiresAt = *j.ExpiresAt
	}
	if err := ch.Validate(); err != nil {
		return Challenge{}, fmt.Errorf("%w: %w", ErrFile, err)
	}
	return ch, nil
}

// proofJSON is the proof file format: the statement, the public inputs
// by name and as the raw vector (hex field elements in circuit order), and
// the proof bytes.
//
//	{
//	  "format": "healthgw-zk-proof/v1",
//	  "statement": "age", "version": 1, "challenge": "<challenge id>",
//	  "issuer": "<hex issuer key>", "params": {…}, "date": "2026-03-01",
//	  "scope": "…", "nonce": "<base64url>", "nullifier": "<hex>",
//	  "public_inputs": ["<hex>", …],
//	  "proof": "<base64 gnark Groth16 proof>"
//	}
type proofJSON struct {
	Format       string            `json:"format"`
	Statement    string            `json:"statement"`
	Version      int               `json:"version"`
	Challenge    string            `json:"challenge,omitempty"`
	Issuer       string            `json:"issuer"`
	Params       map[string]string `json:"params"`
	Date         string            `json:"date"`
	Scope        string            `json:"scope"`
	Nonce        string            `json:"nonce"`
	Nullifier    string            `json:"nullifier"`
	PublicInputs []string          `json:"public_inputs"`
	Proof        string            `json:"proof"`
}

// MarshalProof encodes p in the proof file format.
func MarshalProof(p *Proof) ([]byte, error) {
	in, err := PublicInputs(p.Statement, p.Public)
	if err != nil {
		return nil, err
	}
	params := p.Public.Params.Map(p.Statement)
	delete(params, KeySet) // the root is what was proved; sets can be long
	j := proofJSON{
		Format:    ProofFormat,
		Statement: string(p.Statement),
		Version:   p.Version,
		Challenge: p.Challenge,
		Issuer:    p.Public.Issuer.String(),
		Params:    params,
		Date:      p.Public.Date.String(),
		Scope:     p.Public.Scope,
		Nonce:     base64.RawURLEncoding.EncodeToString(p.Public.Nonce),
		Nullifier: credential.FormatElement(p.Public.Nullifier),
		Proof:     base64.StdEncoding.EncodeToString(p.Bytes),
	}
	for _, e := range in {
		j.PublicInputs = append(j.PublicInputs, credential.FormatElement(e))
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal proof: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseProof decodes a proof file. It checks that the file is consistent
// (the raw public inputs match the named ones, the proof bytes parse) but
// does not verify the proof: use Verify with Proof.PublicFor.
func ParseProof(data []byte) (*Proof, error) {
	var j proofJSON
	if err := credential.DecodeStrict(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if j.Format != ProofFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrFile, j.Format, ProofFormat)
	}
	var p Proof
	var err error
	if p.Statement, err = ParseStatement(j.Statement); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if j.Version != p.Statement.Version() {
		return nil, fmt.Errorf("%w: %s version %d, this build verifies version %d", ErrFile, p.Statement, j.Version, p.Statement.Version())
	}
	p.Version = j.Version
	p.Challenge = j.Challenge
	if p.Public.Issuer, err = credential.ParsePublicKey(j.Issuer); err != nil {
		return nil, fmt.Errorf("%w: issuer: %w", ErrFile, err)
	}
	if p.Public.Params, err = ParseParams(p.Statement, j.Params); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if p.Public.Date, err = credential.ParseDay(j.Date); err != nil {
		return nil, fmt.Errorf("%w: date: %w", ErrFile, err)
	}
	p.Public.Scope = j.Scope
	if p.Public.Nonce, err = base64.RawURLEncoding.DecodeString(j.Nonce); err != nil {
		return nil, fmt.Errorf("%w: nonce: %w", ErrFile, err)
	}
	if p.Public.Nullifier, err = credential.ParseElement(j.Nullifier); err != nil {
		return nil, fmt.Errorf("%w: nullifier: %w", ErrFile, err)
	}
	if p.Bytes, err = base64.StdEncoding.DecodeString(j.Proof); err != nil {
		return nil, fmt.Errorf("%w: proof: %w", ErrFile, err)
	}
	if _, err := parseGroth16(p.Bytes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	in, err := PublicInputs(p.Statement, p.Public)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if len(in) != len(j.PublicInputs) {
		return nil, fmt.Errorf("%w: %d public inputs, want %d", ErrFile, len(j.PublicInputs), len(in))
	}
	for i := range in {
		e, err := credential.ParseElement(j.PublicInputs[i])
		if err != nil || !e.Equal(&in[i]) {
			return nil, fmt.Errorf("%w: public input %d does not match the named inputs", ErrFile, i)
		}
	}
	return &p, nil
}
