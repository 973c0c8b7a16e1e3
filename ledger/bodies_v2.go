package ledger

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry types new in v2. The other v2 types keep their v1 names
// (TypeOrgRegistered, …); the v2 set is closed (see typeOfV2).
const (
	// TypeGatewayRegistered registers a gateway (a node) and its keys.
	TypeGatewayRegistered Type = "gateway.registered"
	// TypeOrgKeysRotated replaces an org's public keys.
	TypeOrgKeysRotated Type = "org.keys_rotated"
)

// Access decisions and the reason for a read of a record that does not
// exist.
const (
	DecisionPermit = "permit"
	DecisionDeny   = "deny"
	// ReasonNotFound is the reason of the access decision logged for a
	// read of a record ID that does not exist: a probe is itself a logged
	// decision, and it takes the same path as a denied read. It follows the
	// consent.Reason vocabulary ("deny." prefix).
	ReasonNotFound = "deny.not-found"
)

// The v2 bodies below are the wire format of v2 statements: their JSON
// names are part of the canonical encoding and must not change within a
// version. Where a body is unchanged from v1 (IssuerRegistered,
// CircuitRegistered) v2 uses the v1 type. No v2 body carries a global
// pseudonym: patients appear as per-entry references (PatientRef).

// GatewayHome is where an org lives: its home gateway (the only gateway
// that may author entries for the org) and that gateway's base URL.
type GatewayHome struct {
	Gateway string `json:"gateway"`
	BaseURL string `json:"base_url"`
}

// GatewayRegistered registers a gateway: its ID, its Ed25519 node key
// (which signs every entry it authors), its X25519 sealing key (to which
// openings are sealed for it) and its base URL. Entry 0 of an embedded
// log; in a consortium, one per genesis validator. It is self-authored:
// author and ID are the same.
type GatewayRegistered struct {
	ID string `json:"id"`
	// PublicKey is the Ed25519 node key, unpadded base64url (32 bytes).
	PublicKey string `json:"public_key"`
	// SealKey is the X25519 public key openings are sealed to, unpadded
	// base64url (32 bytes).
	SealKey string `json:"seal_key"`
	BaseURL string `json:"base_url"`
}

// OrgRegisteredV2 registers an organisation, its public keys and its home
// gateway. An org ID is registered once; keys change with
// org.keys_rotated.
type OrgRegisteredV2 struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Kind    string      `json:"kind"` // hospital, verifier, regulator
	Scopes  []string    `json:"scopes,omitempty"`
	JWKS    string      `json:"jwks,omitempty"`     // inline public JWKS (JSON text)
	JWKSURL string      `json:"jwks_url,omitempty"` // or a URL to fetch it from
	Home    GatewayHome `json:"home"`
}

// OrgKeysRotated replaces an org's public keys. It is authored by the
// org's home gateway and signed by the org's current key (Signature, see
// SignRotation and Authority.Check).
type OrgKeysRotated struct {
	Org     string `json:"org"`
	JWKS    string `json:"jwks,omitempty"`
	JWKSURL string `json:"jwks_url,omitempty"`
	// Previous is the index of the entry that set the org's current keys
	// (its org.registered or its last org.keys_rotated).
	Previous uint64 `json:"previous"`
	// Signature is a compact JWS over RotationPayload by a signing key
	// of the org's current keys.
	Signature string `json:"signature,omitempty"`
}

// ConsentGrantedV2 records a patient's consent provision.
type ConsentGrantedV2 struct {
	ConsentID     string    `json:"consent_id"`
	Patient       string    `json:"patient"` // PatientRef
	Grantee       Grantee   `json:"grantee"`
	Decision      string    `json:"decision"` // permit or deny
	Actions       []string  `json:"actions"`
	Categories    []string  `json:"categories,omitempty"`
	RecordIDs     []string  `json:"record_ids,omitempty"`
	ResourceTypes []string  `json:"resource_types,omitempty"`
	Purposes      []string  `json:"purposes"`
	NotBefore     time.Time `json:"not_before"` // UTC
	NotAfter      time.Time `json:"not_after"`  // UTC
}

// ConsentRevokedV2 withdraws an earlier grant.
type ConsentRevokedV2 struct {
	ConsentID string `json:"consent_id"`
	Patient   string `json:"patient"` // PatientRef
}

// PasskeyRegisteredV2 records a patient's WebAuthn credential: its ID,
// its COSE public key (both unpadded base64url), and the relying party ID
// and origin it was registered at.
type PasskeyRegisteredV2 struct {
	Patient      string `json:"patient"` // PatientRef
	CredentialID string `json:"credential_id"`
	PublicKey    string `json:"public_key"`
	RPID         string `json:"rp_id"`
	Origin       string `json:"origin"`
}

// RecordRegisteredV2 commits to a record held off-ledger by Holder.
type RecordRegisteredV2 struct {
	RecordID     string `json:"record_id"`
	Holder       string `json:"holder"`
	Patient      string `json:"patient"` // PatientRef
	Category     string `json:"category"`
	ResourceType string `json:"resource_type,omitempty"`
	Commitment   string `json:"commitment"` // hex SHA-256 of the ciphertext
	// ContentType and Size: see RecordRegistered (omitted when unknown).
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
}

// RecordShreddedV2 records that a record's data key was destroyed.
type RecordShreddedV2 struct {
	RecordID string `json:"record_id"`
	Holder   string `json:"holder"`
	Patient  string `json:"patient"` // PatientRef
}

// AccessDecidedV2 logs one access decision at the holder (the statement's
// org), permit or deny, including reads of records that do not exist
// (Reason ReasonNotFound, no patient, no category). It is durable before
// any byte of a record is returned.
type AccessDecidedV2 struct {
	Requester  string `json:"requester"` // org ID
	RecordID   string `json:"record_id"`
	Patient    string `json:"patient,omitempty"` // PatientRef; empty for ReasonNotFound
	Category   string `json:"category,omitempty"`
	Purpose    string `json:"purpose"`
	Decision   string `json:"decision"` // DecisionPermit or DecisionDeny
	Reason     string `json:"reason"`   // consent.Reason code or ReasonNotFound
	GrantID    string `json:"grant_id,omitempty"`
	BreakGlass bool   `json:"break_glass"`
	// JustificationCommitment is JustificationCommitment(salt, reason) in
	// hex for a break-glass request that gave a justification; the
	// regulators' opening carries the Justification.
	JustificationCommitment string `json:"justification_commitment,omitempty"`
	// RequestID is the gateway's own request ID.
	RequestID string `json:"request_id"`
	// ClientRequestID is the caller's X-Request-ID, if any: client
	// supplied, so it proves nothing and may collide with another
	// client's.
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// ProofClaims are the values a proof binds: the credential issuer and the
// verifier-scoped nullifier.
type ProofClaims struct {
	Issuer    string `json:"issuer"`
	Nullifier string `json:"nullifier"`
}

// ProofVerifiedV2 logs the outcome of one proof verification. The values
// a proof carries are either Proven (the proof verified) or Unproven
// (what a refused proof claimed), never both, so a reader cannot take a
// claimed nullifier for a proven one.
type ProofVerifiedV2 struct {
	Verifier  string            `json:"verifier"`
	Statement string            `json:"statement"`
	Params    map[string]string `json:"params,omitempty"` // the challenge's policy parameters
	Challenge string            `json:"challenge"`
	Valid     bool              `json:"valid"`
	Reason    string            `json:"reason,omitempty"` // why a proof was refused
	Proven    *ProofClaims      `json:"proven,omitempty"`
	Unproven  *ProofClaims      `json:"unproven,omitempty"`
}

// bodyV2 is implemented by every v2 body. checkV2 checks the body on its
// own; authorshipV2 checks the static part of the authorship rule (which
// org a body must be written for); the registry part (which gateway may
// author for that org) is the verifier's.
type bodyV2 interface {
	checkV2() error
	authorshipV2(author, org string) error
}

var (
	_ bodyV2 = (*GatewayRegistered)(nil)
	_ bodyV2 = (*OrgRegisteredV2)(nil)
	_ bodyV2 = (*OrgKeysRotated)(nil)
	_ bodyV2 = (*ConsentGrantedV2)(nil)
	_ bodyV2 = (*ConsentRevokedV2)(nil)
	_ bodyV2 = (*RecordRegisteredV2)(nil)
	_ bodyV2 = (*RecordShreddedV2)(nil)
	_ bodyV2 = (*AccessDecidedV2)(nil)
	_ bodyV2 = (*IssuerRegistered)(nil)
	_ bodyV2 = (*CircuitRegistered)(nil)
	_ bodyV2 = (*ProofVerifiedV2)(nil)
	_ bodyV2 = (*PasskeyRegisteredV2)(nil)
)

func typeOfV2(body any) (Type, bool) {
	switch body.(type) {
	case *GatewayRegistered:
		return TypeGatewayRegistered, true
	case *OrgRegisteredV2:
		return TypeOrgRegistered, true
	case *OrgKeysRotated:
		return TypeOrgKeysRotated, true
	case *ConsentGrantedV2:
		return TypeConsentGranted, true
	case *ConsentRevokedV2:
		return TypeConsentRevoked, true
	case *RecordRegisteredV2:
		return TypeRecordRegistered, true
	case *RecordShreddedV2:
		return TypeRecordShredded, true
	case *AccessDecidedV2:
		return TypeAccessDecided, true
	case *IssuerRegistered:
		return TypeIssuerRegistered, true
	case *CircuitRegistered:
		return TypeCircuitRegistered, true
	case *ProofVerifiedV2:
		return TypeProofVerified, true
	case *PasskeyRegisteredV2:
		return TypePasskeyRegistered, true
	}
	return "", false
}

func bodyForV2(t Type) any {
	switch t {
	case TypeGatewayRegistered:
		return new(GatewayRegistered)
	case TypeOrgRegistered:
		return new(OrgRegisteredV2)
	case TypeOrgKeysRotated:
		return new(OrgKeysRotated)
	case TypeConsentGranted:
		return new(ConsentGrantedV2)
	case TypeConsentRevoked:
		return new(ConsentRevokedV2)
	case TypeRecordRegistered:
		return new(RecordRegisteredV2)
	case TypeRecordShredded:
		return new(RecordShreddedV2)
	case TypeAccessDecided:
		return new(AccessDecidedV2)
	case TypeIssuerRegistered:
		return new(IssuerRegistered)
	case TypeCircuitRegistered:
		return new(CircuitRegistered)
	case TypeProofVerified:
		return new(ProofVerifiedV2)
	case TypePasskeyRegistered:
		return new(PasskeyRegisteredV2)
	}
	return nil
}

func isTypeV2(t Type) bool { return bodyForV2(t) != nil }

// TypesV2 returns the closed set of v2 entry types.
func TypesV2() []Type {
	return []Type{
		TypeGatewayRegistered, TypeOrgRegistered, TypeOrgKeysRotated,
		TypeConsentGranted, TypeConsentRevoked, TypeRecordRegistered,
		TypeRecordShredded, TypeAccessDecided, TypeIssuerRegistered,
		TypeCircuitRegistered, TypeProofVerified, TypePasskeyRegistered,
	}
}

// maxFieldLen bounds free-text and ID fields of v2 bodies.
const maxFieldLen = 256

// errEmpty: a required field is empty. (hexDigestPattern: idsyntax.go.)
var errEmpty = errors.New("required field is empty")

func need(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s: %w", name, errEmpty)
	}
	if len(v) > maxFieldLen {
		return fmt.Errorf("%s: longer than %d bytes", name, maxFieldLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s: not UTF-8", name)
	}
	return nil
}

func optional(name, v string) error {
	if v == "" {
		return nil
	}
	return need(name, v)
}

func needOrg(name, v string) error {
	if !orgIDPattern.MatchString(v) {
		return fmt.Errorf("%s %q is not an org ID", name, v)
	}
	return nil
}

func needList(name string, vs []string, required bool) error {
	if required && len(vs) == 0 {
		return fmt.Errorf("%s: %w", name, errEmpty)
	}
	for i, v := range vs {
		if err := need(fmt.Sprintf("%s[%d]", name, i), v); err != nil {
			return err
		}
	}
	return nil
}

func needPatientRef(v string) error {
	if !ValidPatientRef(v) {
		return fmt.Errorf("patient %q is not a patient reference", v)
	}
	return nil
}

func needHexDigest(name, v string) error {
	if !hexDigestPattern.MatchString(v) {
		return fmt.Errorf("%s must be 64 lowercase hex digits", name)
	}
	return nil
}

func needBaseURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || len(v) > maxFieldLen {
		return fmt.Errorf("%s %q is not an http(s) base URL", name, v)
	}
	return nil
}

func needUTC(name string, t time.Time) error {
	if t.IsZero() || t.Location() != time.UTC {
		return fmt.Errorf("%s must be a UTC time", name)
	}
	return nil
}

func needOrgIs(what, want, org string) error {
	if org != want {
		return fmt.Errorf("org %q is not %s %q", org, what, want)
	}
	return nil
}

func reserved(id string) bool { return id == OrgPatient || id == OrgGateway }

func (b *GatewayRegistered) checkV2() error {
	if !gatewayIDPattern.MatchString(b.ID) {
		return fmt.Errorf("id %q is not a gateway ID", b.ID)
	}
	if _, err := ParseNodeKey(b.PublicKey); err != nil {
		return fmt.Errorf("public_key: %v", err)
	}
	if _, err := ParseSealKey(b.SealKey); err != nil {
		return fmt.Errorf("seal_key: %v", err)
	}
	return needBaseURL("base_url", b.BaseURL)
}

func (b *GatewayRegistered) authorshipV2(author, org string) error {
	if b.ID != author {
		return fmt.Errorf("gateway %q registered by %q: a gateway registers itself", b.ID, author)
	}
	return needOrgIs("the gateway marker", OrgGateway, org)
}

func (b *OrgRegisteredV2) checkV2() error {
	if err := needOrg("id", b.ID); err != nil {
		return err
	}
	if reserved(b.ID) {
		return fmt.Errorf("id %q is reserved", b.ID)
	}
	if err := need("name", b.Name); err != nil {
		return err
	}
	if err := need("kind", b.Kind); err != nil {
		return err
	}
	if err := needList("scopes", b.Scopes, false); err != nil {
		return err
	}
	if b.JWKS != "" && b.JWKSURL != "" {
		return fmt.Errorf("both jwks and jwks_url")
	}
	if b.JWKS != "" && !json.Valid([]byte(b.JWKS)) {
		return fmt.Errorf("jwks is not JSON")
	}
	if b.JWKSURL != "" {
		if err := needBaseURL("jwks_url", strings.SplitN(b.JWKSURL, "?", 2)[0]); err != nil {
			return err
		}
	}
	if !gatewayIDPattern.MatchString(b.Home.Gateway) {
		return fmt.Errorf("home gateway %q is not a gateway ID", b.Home.Gateway)
	}
	return needBaseURL("home base_url", b.Home.BaseURL)
}

func (b *OrgRegisteredV2) authorshipV2(author, org string) error {
	if b.Home.Gateway != author {
		return fmt.Errorf("org %q homed at %q registered by %q: only its home gateway registers an org", b.ID, b.Home.Gateway, author)
	}
	return needOrgIs("the registered org", b.ID, org)
}

func (b *OrgKeysRotated) checkV2() error {
	if err := needOrg("org", b.Org); err != nil {
		return err
	}
	if (b.JWKS == "") == (b.JWKSURL == "") {
		return fmt.Errorf("exactly one of jwks and jwks_url")
	}
	if b.JWKS != "" && !json.Valid([]byte(b.JWKS)) {
		return fmt.Errorf("jwks is not JSON")
	}
	if b.JWKSURL != "" {
		return needBaseURL("jwks_url", strings.SplitN(b.JWKSURL, "?", 2)[0])
	}
	return nil
}

func (b *OrgKeysRotated) authorshipV2(_, org string) error {
	return needOrgIs("the rotating org", b.Org, org)
}

func (b *ConsentGrantedV2) checkV2() error {
	if err := need("consent_id", b.ConsentID); err != nil {
		return err
	}
	if err := needPatientRef(b.Patient); err != nil {
		return err
	}
	if (b.Grantee.Org == "") == (b.Grantee.Kind == "") {
		return fmt.Errorf("grantee names exactly one of org and kind")
	}
	if b.Grantee.Org != "" {
		if err := needOrg("grantee org", b.Grantee.Org); err != nil {
			return err
		}
	}
	if err := optional("grantee kind", b.Grantee.Kind); err != nil {
		return err
	}
	if b.Decision != DecisionPermit && b.Decision != DecisionDeny {
		return fmt.Errorf("decision %q is neither permit nor deny", b.Decision)
	}
	for _, l := range []struct {
		name     string
		vs       []string
		required bool
	}{
		{"actions", b.Actions, true}, {"categories", b.Categories, false}, {"record_ids", b.RecordIDs, false},
		// A permit names its purposes; a deny without purposes denies
		// every purpose (consent.Grant.Validate's rule).
		{"resource_types", b.ResourceTypes, false}, {"purposes", b.Purposes, b.Decision == DecisionPermit},
	} {
		if err := needList(l.name, l.vs, l.required); err != nil {
			return err
		}
	}
	if err := needUTC("not_before", b.NotBefore); err != nil {
		return err
	}
	if err := needUTC("not_after", b.NotAfter); err != nil {
		return err
	}
	if !b.NotAfter.After(b.NotBefore) {
		return fmt.Errorf("not_after is not after not_before")
	}
	return nil
}

func (b *ConsentGrantedV2) authorshipV2(_, org string) error {
	return needOrgIs("the patient marker", OrgPatient, org)
}

func (b *ConsentRevokedV2) checkV2() error {
	if err := need("consent_id", b.ConsentID); err != nil {
		return err
	}
	return needPatientRef(b.Patient)
}

func (b *ConsentRevokedV2) authorshipV2(_, org string) error {
	return needOrgIs("the patient marker", OrgPatient, org)
}

func (b *PasskeyRegisteredV2) checkV2() error {
	if err := needPatientRef(b.Patient); err != nil {
		return err
	}
	if err := needB64URL("credential_id", b.CredentialID); err != nil {
		return err
	}
	if err := needB64URL("public_key", b.PublicKey); err != nil {
		return err
	}
	if err := need("rp_id", b.RPID); err != nil {
		return err
	}
	return needBaseURL("origin", b.Origin)
}

func (b *PasskeyRegisteredV2) authorshipV2(_, org string) error {
	return needOrgIs("the patient marker", OrgPatient, org)
}

// needB64URL checks v is non-empty unpadded base64url within the field
// bound.
func needB64URL(name, v string) error {
	if err := need(name, v); err != nil {
		return err
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(v); err != nil {
		return fmt.Errorf("%s is not unpadded base64url", name)
	}
	return nil
}

func (b *RecordRegisteredV2) checkV2() error {
	if err := need("record_id", b.RecordID); err != nil {
		return err
	}
	if err := needOrg("holder", b.Holder); err != nil {
		return err
	}
	if err := needPatientRef(b.Patient); err != nil {
		return err
	}
	if err := need("category", b.Category); err != nil {
		return err
	}
	if err := optional("resource_type", b.ResourceType); err != nil {
		return err
	}
	if err := optional("content_type", b.ContentType); err != nil {
		return err
	}
	if b.Size < 0 {
		return errors.New("size: negative")
	}
	return needHexDigest("commitment", b.Commitment)
}

func (b *RecordRegisteredV2) authorshipV2(_, org string) error {
	return needOrgIs("the holder", b.Holder, org)
}

func (b *RecordShreddedV2) checkV2() error {
	if err := need("record_id", b.RecordID); err != nil {
		return err
	}
	if err := needOrg("holder", b.Holder); err != nil {
		return err
	}
	return needPatientRef(b.Patient)
}

func (b *RecordShreddedV2) authorshipV2(_, org string) error {
	return needOrgIs("the holder", b.Holder, org)
}

func (b *AccessDecidedV2) checkV2() error {
	if err := needOrg("requester", b.Requester); err != nil {
		return err
	}
	if err := need("record_id", b.RecordID); err != nil {
		return err
	}
	// A holder reading its own record states no purpose.
	if err := optional("purpose", b.Purpose); err != nil {
		return err
	}
	if b.Decision != DecisionPermit && b.Decision != DecisionDeny {
		return fmt.Errorf("decision %q is neither permit nor deny", b.Decision)
	}
	if err := need("reason", b.Reason); err != nil {
		return err
	}
	if !strings.HasPrefix(b.Reason, b.Decision+".") {
		return fmt.Errorf("reason %q does not belong to decision %q", b.Reason, b.Decision)
	}
	if b.Reason == ReasonNotFound {
		if b.Patient != "" || b.Category != "" || b.GrantID != "" {
			return fmt.Errorf("a not-found decision names no patient, category or grant")
		}
	} else {
		if err := needPatientRef(b.Patient); err != nil {
			return err
		}
		if err := need("category", b.Category); err != nil {
			return err
		}
	}
	if err := optional("grant_id", b.GrantID); err != nil {
		return err
	}
	if b.JustificationCommitment != "" {
		if !b.BreakGlass {
			return fmt.Errorf("justification_commitment without break_glass")
		}
		if err := needHexDigest("justification_commitment", b.JustificationCommitment); err != nil {
			return err
		}
	}
	if err := need("request_id", b.RequestID); err != nil {
		return err
	}
	return optional("client_request_id", b.ClientRequestID)
}

func (b *AccessDecidedV2) authorshipV2(_, org string) error {
	// The holder decides and logs: the statement's org is the holder,
	// bound to its home gateway by the registry; the requester is in the
	// body.
	if reserved(org) {
		return fmt.Errorf("org %q cannot decide access", org)
	}
	return nil
}

func (b *IssuerRegistered) checkV2() error {
	if err := needOrg("issuer", b.Issuer); err != nil {
		return err
	}
	if err := need("key_id", b.KeyID); err != nil {
		return err
	}
	if _, err := hex.DecodeString(b.PublicKey); err != nil || b.PublicKey == "" || b.PublicKey != strings.ToLower(b.PublicKey) {
		return fmt.Errorf("public_key must be lowercase hex")
	}
	return nil
}

func (b *IssuerRegistered) authorshipV2(_, org string) error {
	return needOrgIs("the issuer", b.Issuer, org)
}

func (b *CircuitRegistered) checkV2() error {
	if err := need("statement", b.Statement); err != nil {
		return err
	}
	if b.Version < 1 {
		return fmt.Errorf("version %d", b.Version)
	}
	if err := needHexDigest("vk_hash", b.VKHash); err != nil {
		return err
	}
	if b.Setup != "ceremony" && b.Setup != "dev" {
		return fmt.Errorf("setup %q is neither ceremony nor dev", b.Setup)
	}
	return nil
}

func (b *CircuitRegistered) authorshipV2(_, org string) error {
	return needOrgIs("the gateway marker", OrgGateway, org)
}

func (b *ProofVerifiedV2) checkV2() error {
	if err := needOrg("verifier", b.Verifier); err != nil {
		return err
	}
	if err := need("statement", b.Statement); err != nil {
		return err
	}
	for k, v := range b.Params {
		if err := need("params key", k); err != nil {
			return err
		}
		if len(v) > maxFieldLen {
			return fmt.Errorf("params[%q]: longer than %d bytes", k, maxFieldLen)
		}
	}
	if err := need("challenge", b.Challenge); err != nil {
		return err
	}
	if b.Valid {
		if b.Proven == nil || b.Unproven != nil || b.Reason != "" {
			return fmt.Errorf("a valid proof has proven values only, and no reason")
		}
		if err := need("proven issuer", b.Proven.Issuer); err != nil {
			return err
		}
		return need("proven nullifier", b.Proven.Nullifier)
	}
	if b.Proven != nil {
		return fmt.Errorf("a refused proof proves nothing")
	}
	if err := need("reason", b.Reason); err != nil {
		return err
	}
	if c := b.Unproven; c != nil {
		if c.Issuer == "" && c.Nullifier == "" {
			return fmt.Errorf("unproven claims are empty")
		}
		if err := optional("unproven issuer", c.Issuer); err != nil {
			return err
		}
		return optional("unproven nullifier", c.Nullifier)
	}
	return nil
}

func (b *ProofVerifiedV2) authorshipV2(_, org string) error {
	return needOrgIs("the verifier", b.Verifier, org)
}
