package ledger

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
)

// Errors of v2 verification. Each names one way an entry fails its
// checks; inspect them with errors.Is. Decoders return ErrMalformed,
// ErrNonCanonical, ErrUnknownType and ErrTooLarge.
var (
	// ErrBadEntrySignature: the header's signature does not verify under
	// the author's node key. It is an ErrBadSignature (errors.Is matches
	// both), the checkpoint's sentinel, one level down.
	ErrBadEntrySignature error = &subError{"ledger: entry signature not valid", ErrBadSignature}
	// ErrCommitmentMismatch: the statement does not hash to the header's
	// commitment (or a sealed opening is bound to another commitment).
	ErrCommitmentMismatch = errors.New("ledger: statement does not match the commitment")
	// ErrStatementMismatch: the statement's type, author or org differ
	// from the header's.
	ErrStatementMismatch = errors.New("ledger: statement does not match the header")
	// ErrAttestationMismatch: the opening's attestations do not hash to
	// the header's att.
	ErrAttestationMismatch = errors.New("ledger: attestations do not match the header")
	// ErrJustificationMismatch: a break-glass justification does not open
	// the body's justification commitment.
	ErrJustificationMismatch = errors.New("ledger: justification does not match its commitment")
	// ErrSealMismatch: the header does not hash to the leaf's seal.
	ErrSealMismatch = errors.New("ledger: header does not match the leaf's seal")
	// ErrLeafMismatch: the leaf's type or version differ from the header's.
	ErrLeafMismatch = errors.New("ledger: leaf does not match the header")
	// ErrAuthorship: a statement is written for an org it may not be
	// written for (e.g. a record.registered whose org is not its holder).
	ErrAuthorship = errors.New("ledger: entry breaks the authorship rule")
	// ErrBadNodeKey: a node key is not an Ed25519 key.
	ErrBadNodeKey = errors.New("ledger: not an Ed25519 node key")
)

// subError is a sentinel error that is also its parent sentinel.
type subError struct {
	msg    string
	parent error
}

func (e *subError) Error() string { return e.msg }
func (e *subError) Unwrap() error { return e.parent }

// verifyKinds lists the sentinels a VerifyError's Kind is chosen from, the
// most specific first.
var verifyKinds = []error{
	ErrBadEntrySignature, ErrCommitmentMismatch, ErrStatementMismatch, ErrAttestationMismatch,
	ErrJustificationMismatch, ErrSealMismatch, ErrLeafMismatch, ErrAuthorship, ErrBadNodeKey,
	ErrTooLarge, ErrUnknownType, ErrNonCanonical, ErrMalformed,
}

// VerifyError reports the first check an entry failed, for verifiers that
// walk a log: Index is the entry's index in the log and Kind one of the
// sentinel errors above. errors.Is matches both Kind and the detail.
type VerifyError struct {
	Index uint64
	Kind  error
	Err   error
}

func (e *VerifyError) Error() string {
	return "ledger: entry " + strconv.FormatUint(e.Index, 10) + ": " + e.Err.Error()
}

// Unwrap returns the kind and the detail.
func (e *VerifyError) Unwrap() []error { return []error{e.Kind, e.Err} }

func verifyError(index uint64, err error) error {
	if err == nil {
		return nil
	}
	kind := ErrMalformed
	for _, k := range verifyKinds {
		if errors.Is(err, k) {
			kind = k
			break
		}
	}
	return &VerifyError{Index: index, Kind: kind, Err: err}
}

// Signer signs v2 entries with a gateway's Ed25519 node key. The key may
// live in an HSM or KMS: any crypto.Signer whose public key is Ed25519
// (ed25519.PrivateKey is one).
type Signer struct {
	author string
	key    crypto.Signer
	pub    ed25519.PublicKey
}

// NewSigner returns a signer for the gateway author with its node key.
func NewSigner(author string, key crypto.Signer) (*Signer, error) {
	if !gatewayIDPattern.MatchString(author) {
		return nil, fmt.Errorf("%w: author %q is not a gateway ID", ErrMalformed, author)
	}
	if key == nil {
		return nil, ErrBadNodeKey
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %T", ErrBadNodeKey, key.Public())
	}
	return &Signer{author: author, key: key, pub: pub}, nil
}

// Author returns the gateway ID the signer signs as.
func (s *Signer) Author() string { return s.author }

// Public returns the node key's public half, as registered in the
// gateway's gateway.registered.
func (s *Signer) Public() ed25519.PublicKey { return s.pub }

// Statement returns the canonical statement of body, authored by the
// signer for org, with the given salt (the salt patient references in the
// body were computed with; see PatientRef). Collect attestations over
// Commitment(statement), then call Sign.
func (s *Signer) Statement(org string, salt Salt, body any) ([]byte, error) {
	_, b, _, err := s.statement(org, salt, body)
	return b, err
}

// statement returns the statement of body and its canonical encoding,
// validated once (NewStatement checks what EncodeStatement would), and
// whether its body was written by the fast encoder (encodeStatementFast).
func (s *Signer) statement(org string, salt Salt, body any) (Statement, []byte, bool, error) {
	st, err := NewStatement(s.author, org, salt, body)
	if err != nil {
		return Statement{}, nil, false, err
	}
	b, fast, err := encodeStatementFast(st)
	if err != nil {
		return Statement{}, nil, false, err
	}
	return st, b, fast, nil
}

// Sign returns the signed header of a statement (the signer's own: its
// author must be the signer) with its attestations, and the leaf for the
// log, without a time (the log sets it).
func (s *Signer) Sign(statement []byte, atts []Attestation) (Header, Leaf, error) {
	st, err := DecodeStatement(statement)
	if err != nil {
		return Header{}, Leaf{}, err
	}
	h, hb, err := s.sign(st, statement, atts)
	if err != nil {
		return Header{}, Leaf{}, err
	}
	return h, Leaf{Version: VersionV2, Type: h.Type, Seal: Seal(hb)}, nil
}

// sign returns the signed header of st, whose canonical encoding is
// statement (the caller's: Sign decodes it, the Node encoded it), and the
// header's canonical bytes.
func (s *Signer) sign(st Statement, statement []byte, atts []Attestation) (Header, []byte, error) {
	if st.Author != s.author {
		return Header{}, nil, fmt.Errorf("%w: statement by %q, signer %q", ErrStatementMismatch, st.Author, s.author)
	}
	att, err := AttestationsDigest(atts)
	if err != nil {
		return Header{}, nil, err
	}
	h := Header{
		Type: st.Type, Version: VersionV2, Author: st.Author, Org: st.Org,
		Commitment: Commitment(statement), Att: att,
	}
	sig, err := s.key.Sign(nil, SignatureMessage(h), crypto.Hash(0))
	if err != nil {
		return Header{}, nil, fmt.Errorf("ledger: sign entry: %w", err)
	}
	if len(sig) != len(h.Sig) {
		return Header{}, nil, fmt.Errorf("%w: signature of %d bytes", ErrBadNodeKey, len(sig))
	}
	copy(h.Sig[:], sig)
	hb, err := EncodeHeader(h)
	if err != nil {
		return Header{}, nil, err
	}
	return h, hb, nil
}

// NewEntry builds, signs and seals an entry without attestations: its
// canonical statement (for the opening), its header and its leaf without
// a time.
func (s *Signer) NewEntry(org string, salt Salt, body any) (statement []byte, h Header, l Leaf, err error) {
	statement, err = s.Statement(org, salt, body)
	if err != nil {
		return nil, Header{}, Leaf{}, err
	}
	h, l, err = s.Sign(statement, nil)
	if err != nil {
		return nil, Header{}, Leaf{}, err
	}
	return statement, h, l, nil
}

// VerifyHeader checks h's signature under the author's node key pub (the
// key registered for h.Author as of the entry's index; looking it up is
// the caller's). It returns ErrBadSignature if it does not verify.
func VerifyHeader(h Header, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadNodeKey, len(pub))
	}
	if err := h.validate(); err != nil {
		return err
	}
	if !ed25519.Verify(pub, SignatureMessage(h), h.Sig[:]) {
		return fmt.Errorf("%w: %s by %s", ErrBadEntrySignature, h.Type, h.Author)
	}
	return nil
}

// CheckOpening checks an opening against the header it claims to open and
// returns the decoded statement: the statement hashes to the header's
// commitment, agrees with its type, author and org, the attestations hash
// to its att, and a justification, if present, opens the body's
// justification commitment. It does not check the header's signature
// (VerifyHeader) or the attestations' own signatures (the registry's).
func CheckOpening(o Opening, h Header) (Statement, error) {
	if c := Commitment(o.Statement); c != h.Commitment {
		return Statement{}, fmt.Errorf("%w: %s, header %s", ErrCommitmentMismatch, c, h.Commitment)
	}
	st, err := DecodeStatement(o.Statement)
	if err != nil {
		return Statement{}, err
	}
	if st.Type != h.Type || st.Author != h.Author || st.Org != h.Org {
		return Statement{}, fmt.Errorf("%w: statement %s/%s/%s, header %s/%s/%s", ErrStatementMismatch,
			st.Type, st.Author, st.Org, h.Type, h.Author, h.Org)
	}
	att, err := AttestationsDigest(o.Attestations)
	if err != nil {
		return Statement{}, err
	}
	if att != h.Att {
		return Statement{}, fmt.Errorf("%w: %d attestations", ErrAttestationMismatch, len(o.Attestations))
	}
	if j := o.Justification; j != nil {
		ad, ok := st.Body.(*AccessDecidedV2)
		if !ok || ad.JustificationCommitment == "" {
			return Statement{}, fmt.Errorf("%w: %s has no justification commitment", ErrJustificationMismatch, st.Type)
		}
		if j.Commitment().String() != ad.JustificationCommitment {
			return Statement{}, ErrJustificationMismatch
		}
	}
	return st, nil
}

// CheckLeaf checks that leaf l is the leaf of header h: same type and
// version, and the seal is Seal(EncodeHeader(h)). That l is in the tree is
// an inclusion proof's job (VerifyInclusion over EncodeLeaf(l)), which
// also covers l's time.
func CheckLeaf(l Leaf, h Header) error {
	if l.Version != VersionV2 || l.Type != h.Type {
		return fmt.Errorf("%w: leaf %s v%d, header %s", ErrLeafMismatch, l.Type, l.Version, h.Type)
	}
	hb, err := EncodeHeader(h)
	if err != nil {
		return err
	}
	if Seal(hb) != l.Seal {
		return fmt.Errorf("%w: %s", ErrSealMismatch, l.Type)
	}
	return nil
}

// CheckEntry runs every check a verifier makes on the entry at index from
// its raw bytes, short of the inclusion proof and the registry: the leaf
// and header decode, the header's seal is in the leaf, its signature
// verifies under pub (the author's node key as of index; nil: not
// checked, for a holder of a receipt without the registry) and, when opening
// is not nil, the opening opens it. It returns the statement (zero without
// an opening) and, on failure, a *VerifyError.
//
// A public verifier (tiles only) has neither header nor key and checks the
// tree alone; a consortium node checks with opening nil; a party or a
// regulator with its opening.
func CheckEntry(index uint64, leaf, header []byte, pub ed25519.PublicKey, opening *Opening) (Statement, error) {
	l, err := DecodeLeaf(leaf)
	if err != nil {
		return Statement{}, verifyError(index, err)
	}
	if Seal(header) != l.Seal {
		// Compare the raw bytes first: a header that decodes to the
		// same value from other bytes cannot exist (canonical), but the
		// seal is over the bytes the author produced.
		return Statement{}, verifyError(index, fmt.Errorf("%w: %s", ErrSealMismatch, l.Type))
	}
	h, err := DecodeHeader(header)
	if err != nil {
		return Statement{}, verifyError(index, err)
	}
	if err := CheckLeaf(l, h); err != nil {
		return Statement{}, verifyError(index, err)
	}
	if pub != nil {
		if err := VerifyHeader(h, pub); err != nil {
			return Statement{}, verifyError(index, err)
		}
	}
	if opening == nil {
		return Statement{}, nil
	}
	st, err := CheckOpening(*opening, h)
	if err != nil {
		return Statement{}, verifyError(index, err)
	}
	return st, nil
}
