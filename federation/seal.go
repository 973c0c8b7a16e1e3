package federation

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// AnswerType is the "typ" of a holder's signed answer (inside the JWE),
// and the JWE's "cty".
const AnswerType = "healthgw-fed-answer+jws"

// ErrBadAnswer: a holder's answer that does not open with this gateway's
// sealing key, is not signed by the holder gateway's node key, or answers
// another request. Nothing of it is served.
var ErrBadAnswer = errors.New("federation: the holder's answer does not verify")

// answer is what a holder signs: the body, bound to the request token's ID
// and to the holder gateway.
type answer struct {
	Request string          `json:"rt"`
	Holder  string          `json:"gw"`
	Body    json.RawMessage `json:"body"`
}

// Seal is the holder's side: it signs body (JSON) for the request whose
// token ID is requestID with the holder gateway's node key, then encrypts
// the signed answer to the requesting gateway's X25519 sealing key as a
// compact JWE (ECDH-ES+A256KW, A256GCM).
func Seal(body []byte, requestID, holder string, holderKey ed25519.PrivateKey, to *ecdh.PublicKey) ([]byte, error) {
	if to == nil || to.Curve() != ecdh.X25519() {
		return nil, errors.New("federation: seal: not an X25519 public key")
	}
	if !json.Valid(body) {
		return nil, errors.New("federation: seal: body is not JSON")
	}
	signed, err := signJWS(answer{Request: requestID, Holder: holder, Body: body}, holderKey, AnswerType)
	if err != nil {
		return nil, err
	}
	hdr := jwe.NewHeaders()
	if err := hdr.Set(jwe.ContentTypeKey, AnswerType); err != nil {
		return nil, err
	}
	out, err := jwe.Encrypt([]byte(signed),
		jwe.WithKey(jwa.ECDH_ES_A256KW(), to),
		jwe.WithContentEncryption(jwa.A256GCM()),
		jwe.WithProtectedHeaders(hdr),
		jwe.WithCompact(),
	)
	if err != nil {
		return nil, fmt.Errorf("federation: seal: %w", err)
	}
	return out, nil
}

// Open is the requesting gateway's side: it decrypts sealed with its
// sealing key, checks the answer is signed by holderKey (the holder
// gateway's registered node key), names holder and answers the request
// whose token ID is requestID, and returns the body. ErrBadAnswer
// otherwise.
func Open(sealed []byte, key *ecdh.PrivateKey, holder string, holderKey ed25519.PublicKey, requestID string) ([]byte, error) {
	plain, err := jwe.Decrypt(sealed, jwe.WithKey(jwa.ECDH_ES_A256KW(), key))
	if err != nil {
		return nil, fmt.Errorf("%w: does not decrypt: %v", ErrBadAnswer, err)
	}
	msg, err := jws.Parse(plain)
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, fmt.Errorf("%w: not a signed answer", ErrBadAnswer)
	}
	if typ, ok := msg.Signatures()[0].ProtectedHeaders().Type(); !ok || typ != AnswerType {
		return nil, fmt.Errorf("%w: typ is not %s", ErrBadAnswer, AnswerType)
	}
	payload, err := jws.Verify(plain, jws.WithKey(jwa.EdDSA(), holderKey))
	if err != nil {
		return nil, fmt.Errorf("%w: not signed by gateway %q", ErrBadAnswer, holder)
	}
	var a answer
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if a.Holder != holder || a.Request != requestID {
		return nil, fmt.Errorf("%w: it answers another request", ErrBadAnswer)
	}
	return a.Body, nil
}
