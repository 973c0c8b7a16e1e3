package ledger

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Key rotation (org.keys_rotated). A rotation is authored by the org's
// home gateway and signed by the org: its Signature is a compact JWS, by
// a signing key of the org's current inline JWK Set, over RotationPayload
// — the org ID, the new keys and Previous, the index of the entry that
// set the current keys (the org.registered or the last org.keys_rotated).
// Previous makes every rotation single-use: once applied, the org's keys
// are those of the rotation's index, so a replayed rotation (even after
// the org rotated back to an earlier key set) names a stale index and is
// refused. The authority (Authority.Check) verifies the signature against
// the keys current at the entry's index, at every node; a key cannot
// authorize itself, since only the keys already in the ledger count.

// RotationPayloadType is the "typ" of a rotation's JWS payload.
const RotationPayloadType = "healthgw/org.keys_rotated/v1"

// maxRotationSignature bounds a rotation's JWS (the payload holds the new
// JWK Set).
const maxRotationSignature = 128 << 10

// ErrRotationSignature: an org.keys_rotated is not signed by the org's
// current keys (missing, malformed, by another key, over other content,
// or naming other current keys than the ledger's). errors.Is also
// matches ErrAuthorshipRefused.
var ErrRotationSignature = fmt.Errorf("%w: key rotation not signed by the org's current keys", ErrAuthorshipRefused)

type rotationPayload struct {
	Typ      string `json:"typ"`
	Org      string `json:"org"`
	JWKS     string `json:"jwks"`
	JWKSURL  string `json:"jwks_url"`
	Previous uint64 `json:"previous"`
}

// RotationPayload is the content an org signs to rotate its keys: compact
// JSON of RotationPayloadType, b.Org, b.JWKS, b.JWKSURL and b.Previous
// (not b.Signature).
func RotationPayload(b *OrgKeysRotated) ([]byte, error) {
	return marshalCompact(rotationPayload{
		Typ: RotationPayloadType, Org: b.Org, JWKS: b.JWKS, JWKSURL: b.JWKSURL, Previous: b.Previous,
	})
}

// SignRotation sets b.Signature to a compact JWS over RotationPayload(b)
// by key, a private signing JWK of the org (its "alg", or the one its
// type implies: ES256, ES384, EdDSA; RSA keys need "alg").
func SignRotation(b *OrgKeysRotated, key jwk.Key) error {
	alg, err := rotationAlg(key)
	if err != nil {
		return err
	}
	payload, err := RotationPayload(b)
	if err != nil {
		return err
	}
	sig, err := jws.Sign(payload, jws.WithKey(alg, key))
	if err != nil {
		return fmt.Errorf("ledger: sign rotation: %w", err)
	}
	b.Signature = string(sig)
	return nil
}

// VerifyRotation checks that b.Signature is a JWS over RotationPayload(b)
// by a signing key of currentJWKS, the org's current inline JWK Set. It
// does not check b.Previous against the log (Authority.Check does).
// Errors wrap ErrRotationSignature.
func VerifyRotation(b *OrgKeysRotated, currentJWKS string) error {
	if b.Signature == "" {
		return fmt.Errorf("%w: the rotation carries no signature", ErrRotationSignature)
	}
	if len(b.Signature) > maxRotationSignature || bytes.Count([]byte(b.Signature), []byte(".")) != 2 {
		return fmt.Errorf("%w: the signature is not a compact JWS", ErrRotationSignature)
	}
	keys, err := rotationKeys(currentJWKS)
	if err != nil {
		return fmt.Errorf("%w: the org's current keys: %v", ErrRotationSignature, err)
	}
	want, err := RotationPayload(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRotationSignature, err)
	}
	for _, k := range keys {
		got, err := jws.Verify([]byte(b.Signature), jws.WithKey(k.alg, k.key))
		if err != nil {
			continue
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%w: signed by the org's key %q over other content than this rotation", ErrRotationSignature, k.kid)
		}
		return nil
	}
	return fmt.Errorf("%w: no current signing key of the org verifies it", ErrRotationSignature)
}

type rotationKey struct {
	kid string
	alg jwa.SignatureAlgorithm
	key jwk.Key
}

// rotationKeys returns the asymmetric public signing keys of an inline
// JWK Set, each with the one algorithm it verifies.
func rotationKeys(jwks string) ([]rotationKey, error) {
	if jwks == "" {
		return nil, errors.New("the org publishes its keys at a URL, not in the ledger: a rotation cannot be checked against them")
	}
	set, err := jwk.Parse([]byte(jwks))
	if err != nil {
		return nil, fmt.Errorf("parse: %v", err)
	}
	var out []rotationKey
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use, _ := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
			continue
		}
		if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
			continue // symmetric or private material: never a verification key
		}
		alg, err := rotationAlg(k)
		if err != nil {
			continue
		}
		kid, _ := k.KeyID()
		out = append(out, rotationKey{kid: kid, alg: alg, key: k})
	}
	if len(out) == 0 {
		return nil, errors.New("no signing key")
	}
	return out, nil
}

// rotationAlg is the signature algorithm of an org key: its "alg" if it
// names an asymmetric one, else the one its curve implies.
func rotationAlg(k jwk.Key) (jwa.SignatureAlgorithm, error) {
	if a, ok := k.Algorithm(); ok {
		sa, ok := jwa.LookupSignatureAlgorithm(a.String())
		if !ok {
			return jwa.SignatureAlgorithm{}, fmt.Errorf("ledger: key algorithm %q cannot sign", a.String())
		}
		switch sa {
		case jwa.ES256(), jwa.ES384(), jwa.ES512(), jwa.EdDSA(), jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512():
			return sa, nil
		}
		return jwa.SignatureAlgorithm{}, fmt.Errorf("ledger: key algorithm %q is not an asymmetric signature algorithm", a.String())
	}
	switch k.KeyType() {
	case jwa.EC():
		if ek, ok := k.(jwk.ECDSAPublicKey); ok {
			if crv, _ := ek.Crv(); crv == jwa.P384() {
				return jwa.ES384(), nil
			}
		}
		if ek, ok := k.(jwk.ECDSAPrivateKey); ok {
			if crv, _ := ek.Crv(); crv == jwa.P384() {
				return jwa.ES384(), nil
			}
		}
		return jwa.ES256(), nil
	case jwa.OKP():
		return jwa.EdDSA(), nil
	}
	return jwa.SignatureAlgorithm{}, errors.New("ledger: key without an algorithm")
}
