package ledger

import "time"

// The body types below are the ledger's wire format: their JSON names are
// part of the canonical encoding and must not change within a version.
// Patients are always pseudonyms (Pseudonymizer), never raw identifiers.

// OrgRegistered registers (or re-registers, replacing) an organisation and
// its public keys.
type OrgRegistered struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // hospital, verifier, regulator
	Scopes  []string `json:"scopes"`
	JWKS    string   `json:"jwks,omitempty"`     // inline public JWKS (JSON text)
	JWKSURL string   `json:"jwks_url,omitempty"` // or a URL to fetch it from
	// Home is the org's home gateway: the only gateway that may author
	// entries for the org. Left empty on Append, the appending gateway
	// fills in itself.
	Home GatewayHome `json:"home,omitzero"`
}

// Grantee names who a consent grant is for: one org, or every org of a kind.
type Grantee struct {
	Org  string `json:"org,omitempty"`
	Kind string `json:"kind,omitempty"`
}

// ConsentGranted records a patient's consent provision.
type ConsentGranted struct {
	ConsentID     string    `json:"consent_id"`
	Patient       string    `json:"patient"` // pseudonym
	Grantee       Grantee   `json:"grantee"`
	Decision      string    `json:"decision"` // permit or deny
	Actions       []string  `json:"actions"`
	Categories    []string  `json:"categories,omitempty"`
	RecordIDs     []string  `json:"record_ids,omitempty"`
	ResourceTypes []string  `json:"resource_types,omitempty"`
	Purposes      []string  `json:"purposes"`
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
}

// ConsentRevoked withdraws an earlier grant.
type ConsentRevoked struct {
	ConsentID string `json:"consent_id"`
	Patient   string `json:"patient"` // pseudonym
}

// PasskeyRegistered records a patient's WebAuthn credential. Once a
// patient has one, consents about them count only with a valid assertion
// by a registered passkey over the entry's commitment.
type PasskeyRegistered struct {
	Patient      string `json:"patient"`       // pseudonym
	CredentialID string `json:"credential_id"` // unpadded base64url
	PublicKey    string `json:"public_key"`    // COSE key, unpadded base64url
	RPID         string `json:"rp_id"`         // the relying party's ID
	Origin       string `json:"origin"`        // the origin it was registered at
}

// RecordRegistered commits to a record held off-ledger by Holder.
type RecordRegistered struct {
	RecordID     string `json:"record_id"`
	Holder       string `json:"holder"`
	Patient      string `json:"patient"` // pseudonym
	Category     string `json:"category"`
	ResourceType string `json:"resource_type,omitempty"`
	Commitment   string `json:"commitment"` // hex SHA-256 of the ciphertext
	// ContentType and Size are the record's media type and plaintext
	// size, for the consortium-wide listing (the custodian lists records
	// held elsewhere from their registrations); empty and 0 in entries
	// written before they were added.
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
}

// RecordShredded records that a record's data key was destroyed.
type RecordShredded struct {
	RecordID string `json:"record_id"`
	Holder   string `json:"holder"`
	Patient  string `json:"patient"` // pseudonym
}

// AccessDecided logs one access decision, permit or deny. It is durable
// before any byte of a record is returned.
type AccessDecided struct {
	Requester  string `json:"requester"` // org ID
	RecordID   string `json:"record_id"`
	Patient    string `json:"patient"` // pseudonym
	Category   string `json:"category"`
	Purpose    string `json:"purpose"`
	Decision   string `json:"decision"` // permit or deny
	Reason     string `json:"reason"`   // consent.Reason code
	GrantID    string `json:"grant_id,omitempty"`
	BreakGlass bool   `json:"break_glass"`
	// JustificationHash is the unsalted hex SHA-256 of a break-glass
	// justification, in entries written before JustificationCommitment
	// (short or templated reasons fall to a dictionary; no longer written).
	JustificationHash string `json:"justification_hash,omitempty"`
	// JustificationCommitment is the hex JustificationCommitment(salt,
	// reason) of a break-glass justification, with a fresh 32-byte salt
	// per entry that is never published: the free text may hold PHI and
	// cannot be guessed and checked. The opening (salt and reason) is kept
	// off the ledger, for regulators.
	JustificationCommitment string `json:"justification_commitment,omitempty"`
	// RequestID is the gateway's own request ID (random; older entries
	// may carry a client's).
	RequestID string `json:"request_id"`
	// ClientRequestID is the caller's X-Request-ID, if it sent a
	// well-formed one: client-supplied, so it proves nothing and may
	// equal another client's.
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// IssuerRegistered registers a credential issuer's EdDSA (BN254 twisted
// Edwards) public key.
type IssuerRegistered struct {
	Issuer    string `json:"issuer"` // org ID
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // hex, compressed point
}

// CircuitRegistered registers a statement's verifying key.
type CircuitRegistered struct {
	Statement string `json:"statement"`
	Version   int    `json:"version"`
	VKHash    string `json:"vk_hash"` // hex SHA-256 of the serialised verifying key
	Setup     string `json:"setup"`   // "ceremony" or "dev"
}

// ProofVerified logs the outcome of one proof verification.
//
// Issuer and Nullifier are what a valid proof proved (Proven true). A
// refused proof proved nothing: it leaves them empty and logs what it
// claimed as ClaimedIssuer and ClaimedNullifier, with Proven false, so
// nobody takes a claimed nullifier for a proven one. Entries written
// before Proven existed have it absent (nil) and carry the claimed values
// in Issuer and Nullifier, unmarked.
type ProofVerified struct {
	Verifier  string            `json:"verifier"`
	Statement string            `json:"statement"`
	Params    map[string]string `json:"params"`
	Issuer    string            `json:"issuer"`
	Nullifier string            `json:"nullifier"`
	Valid     bool              `json:"valid"`
	Reason    string            `json:"reason,omitempty"`
	Challenge string            `json:"challenge"`
	// Proven says whether Issuer and Nullifier are proven (nil in entries
	// older than the field).
	Proven           *bool  `json:"proven,omitempty"`
	ClaimedIssuer    string `json:"claimed_issuer,omitempty"`
	ClaimedNullifier string `json:"claimed_nullifier,omitempty"`
}

func typeOf(body any) (Type, bool) {
	switch body.(type) {
	case *OrgRegistered:
		return TypeOrgRegistered, true
	case *ConsentGranted:
		return TypeConsentGranted, true
	case *ConsentRevoked:
		return TypeConsentRevoked, true
	case *RecordRegistered:
		return TypeRecordRegistered, true
	case *RecordShredded:
		return TypeRecordShredded, true
	case *AccessDecided:
		return TypeAccessDecided, true
	case *IssuerRegistered:
		return TypeIssuerRegistered, true
	case *CircuitRegistered:
		return TypeCircuitRegistered, true
	case *ProofVerified:
		return TypeProofVerified, true
	case *GatewayRegistered:
		return TypeGatewayRegistered, true
	case *OrgKeysRotated:
		return TypeOrgKeysRotated, true
	case *PasskeyRegistered:
		return TypePasskeyRegistered, true
	}
	return "", false
}

func bodyFor(t Type) any {
	switch t {
	case TypeOrgRegistered:
		return new(OrgRegistered)
	case TypeConsentGranted:
		return new(ConsentGranted)
	case TypeConsentRevoked:
		return new(ConsentRevoked)
	case TypeRecordRegistered:
		return new(RecordRegistered)
	case TypeRecordShredded:
		return new(RecordShredded)
	case TypeAccessDecided:
		return new(AccessDecided)
	case TypeIssuerRegistered:
		return new(IssuerRegistered)
	case TypeCircuitRegistered:
		return new(CircuitRegistered)
	case TypeProofVerified:
		return new(ProofVerified)
	case TypeGatewayRegistered:
		return new(GatewayRegistered)
	case TypeOrgKeysRotated:
		return new(OrgKeysRotated)
	case TypePasskeyRegistered:
		return new(PasskeyRegistered)
	}
	return nil
}
