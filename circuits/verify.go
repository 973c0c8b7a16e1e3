package circuits

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
)

// Verification errors. A proof that parses but does not verify against the
// public inputs is ErrInvalidProof (the answer "valid: false"); the others
// are the caller's or the operator's mistakes.
var (
	ErrMalformedProof = errors.New("malformed proof")
	ErrInvalidProof   = errors.New("invalid proof")
	ErrKeys           = errors.New("invalid or mismatched keys")
)

// Verify checks a Groth16 proof (gnark binary, as in Proof.Bytes) of
// statement s under verifying key vk against pub. It returns nil, or an
// error wrapping ErrUnknownStatement, ErrParams or ErrPublic (bad public
// inputs), ErrMalformedProof, ErrKeys (vk does not fit the statement) or
// ErrInvalidProof.
func Verify(s Statement, vk groth16.VerifyingKey, pub Public, proof []byte) error {
	if err := s.valid(); err != nil {
		return err
	}
	w, err := pub.publicWitness(s)
	if err != nil {
		return err
	}
	vec, _ := w.Vector().(fr.Vector)
	if vk == nil || vk.NbPublicWitness() != len(vec) {
		return fmt.Errorf("%w: verifying key does not fit %s", ErrKeys, s)
	}
	p, err := parseGroth16(proof)
	if err != nil {
		return err
	}
	if err := groth16.Verify(p, vk, w); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidProof, s, err)
	}
	return nil
}

func parseGroth16(b []byte) (groth16.Proof, error) {
	p := groth16.NewProof(ecc.BN254)
	n, err := p.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedProof, err)
	}
	if n != int64(len(b)) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedProof, int64(len(b))-n)
	}
	return p, nil
}

// Verifier holds the verifying keys of a key directory; it is what the
// server keeps. It is safe for concurrent use.
type Verifier struct {
	infos []CircuitInfo
	vks   map[Statement]groth16.VerifyingKey
}

// LoadVerifier reads the manifest and verifying keys of a key directory
// (see WriteKeys), checking every key against its manifest hash and
// version.
func LoadVerifier(dir string) (*Verifier, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	v := &Verifier{vks: map[Statement]groth16.VerifyingKey{}}
	for _, info := range m {
		vk, err := readVerifyingKey(dir, info)
		if err != nil {
			return nil, err
		}
		v.infos = append(v.infos, info)
		v.vks[info.Statement] = vk
	}
	return v, nil
}

// Circuits lists the loaded statements with their versions and key hashes:
// the content of circuit.registered ledger entries and GET /v1/circuits.
func (v *Verifier) Circuits() []CircuitInfo { return slices.Clone(v.infos) }

// VerifyingKey returns the verifying key of s.
func (v *Verifier) VerifyingKey(s Statement) (groth16.VerifyingKey, bool) {
	vk, ok := v.vks[s]
	return vk, ok
}

// Verify verifies a proof of s against pub with the loaded key; see the
// package-level Verify for the errors. A statement without a loaded key is
// ErrUnknownStatement.
func (v *Verifier) Verify(s Statement, pub Public, proof []byte) error {
	vk, ok := v.vks[s]
	if !ok {
		return fmt.Errorf("%q: %w (no key loaded)", string(s), ErrUnknownStatement)
	}
	return Verify(s, vk, pub, proof)
}
