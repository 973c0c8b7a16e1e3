package client

import (
	"encoding/json"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Error is the body of every error answer of the v1 API.
type Error struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// ClientRequestID echoes the caller's X-Request-ID (when well-formed).
	ClientRequestID string `json:"client_request_id,omitempty"`
	// Outcome is "unknown" for a write answered with a server error (a
	// 503 from the ledger): it may still take effect. Repeat it with
	// IdempotencyKey to learn its result; it is never made twice.
	Outcome string `json:"outcome,omitempty"`
	// IdempotencyKey is the write's Idempotency-Key (the client's, or the
	// one the gateway made for it), unquoted.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Location is the path of the resource the write makes or changes,
	// where it can be looked for.
	Location string `json:"location,omitempty"`
}

// TokenResponse is the token endpoint's answer (RFC 6749 section 5.1, and
// the section 5.2 error fields).
type TokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	Scope            string `json:"scope"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// Whoami is GET /v1/whoami: the caller's principal.
type Whoami struct {
	Org     string   `json:"org,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	Patient string   `json:"patient,omitempty"`
}

// RecordUpload is the body of POST /v1/records. Content is a FHIR
// resource (content type application/fhir+json) or a base64 JSON string.
type RecordUpload struct {
	Patient      string          `json:"patient"`
	Category     string          `json:"category"`
	ContentType  string          `json:"content_type"`
	ResourceType string          `json:"resource_type,omitempty"`
	Content      json.RawMessage `json:"content"`
}

// RecordCreated is the 201 body of POST /v1/records.
type RecordCreated struct {
	ID          string `json:"id"`
	Commitment  string `json:"commitment"`
	LedgerIndex uint64 `json:"ledger_index"`
}

// Record is a record's metadata. Patient is the patient ID the caller
// named in a listing (GET /v1/patients/{patient}/records), and empty in a
// read of one record: the gateway never hands out a value that would link
// a patient across hospitals (such as the ledger pseudonym).
type Record struct {
	ID           string    `json:"id"`
	Holder       string    `json:"holder"`
	Patient      string    `json:"patient,omitempty"`
	Category     string    `json:"category"`
	ResourceType string    `json:"resource_type,omitempty"`
	ContentType  string    `json:"content_type"`
	Size         int64     `json:"size"`
	Commitment   string    `json:"commitment"`
	LedgerIndex  uint64    `json:"ledger_index"`
	CreatedAt    time.Time `json:"created_at"`
	// HolderEndpoint is the base URL of the holder's home gateway, as the
	// ledger registry names it (listings only).
	HolderEndpoint string `json:"holder_endpoint,omitempty"`
	// ReadPath is where the caller reads the record at the gateway that
	// answered the listing: /v1/records/{id} for a record held there,
	// /v1/holders/{holder}/records/{id} (a federated read) for one held
	// at another member (listings only).
	ReadPath string `json:"read_path,omitempty"`
}

// RecordContent is GET /v1/records/{id}: the metadata and the content,
// FHIR JSON inline and anything else as a base64 JSON string.
type RecordContent struct {
	Record
	Content json.RawMessage `json:"content"`
}

// RecordList is GET /v1/patients/{patient}/records.
type RecordList struct {
	Records []Record `json:"records"`
	// NextCursor continues the listing (the cursor query parameter of
	// the next request), "" after the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// FederatedRecord is the body a holder's gateway signs and seals to the
// requesting gateway in a federated read (GET /v1/federation/records/{id}):
// the metadata and the raw content.
type FederatedRecord struct {
	Record  Record `json:"record"`
	Content []byte `json:"content"`
}

// Shredded is the body of DELETE /v1/records/{id}.
type Shredded struct {
	ID          string `json:"id"`
	Shredded    bool   `json:"shredded"`
	LedgerIndex uint64 `json:"ledger_index"`
}

// Grantee names who a consent is for: one organisation or a kind.
type Grantee struct {
	Org  string `json:"org,omitempty"`
	Kind string `json:"kind,omitempty"`
}

// ConsentRequest is the body of POST /v1/consents. The patient is the
// token's subject.
type ConsentRequest struct {
	Grantee       Grantee    `json:"grantee"`
	Decision      string     `json:"decision,omitempty"` // permit (default) or deny
	Actions       []string   `json:"actions,omitempty"`  // default [read]
	Categories    []string   `json:"categories,omitempty"`
	RecordIDs     []string   `json:"record_ids,omitempty"`
	ResourceTypes []string   `json:"resource_types,omitempty"`
	Purposes      []string   `json:"purposes,omitempty"`
	NotBefore     *time.Time `json:"not_before,omitempty"`
	NotAfter      *time.Time `json:"not_after,omitempty"`
}

// Consent is a consent grant as the API shows it.
type Consent struct {
	ID            string     `json:"id"`
	Patient       string     `json:"patient"` // pseudonym
	Grantee       Grantee    `json:"grantee"`
	Decision      string     `json:"decision"`
	Actions       []string   `json:"actions"`
	Categories    []string   `json:"categories,omitempty"`
	RecordIDs     []string   `json:"record_ids,omitempty"`
	ResourceTypes []string   `json:"resource_types,omitempty"`
	Purposes      []string   `json:"purposes,omitempty"`
	NotBefore     time.Time  `json:"not_before"`
	NotAfter      time.Time  `json:"not_after"`
	Status        string     `json:"status"`
	LedgerIndex   uint64     `json:"ledger_index"`
	GrantedAt     time.Time  `json:"granted_at"`
	RevokedIndex  *uint64    `json:"revoked_index,omitempty"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	// Signed: the grant carries a valid assertion by one of the
	// patient's registered passkeys.
	Signed bool `json:"signed"`
}

// EntryProof is a ledger entry with its inclusion proof in a tree of
// TreeSize entries whose root is RootHash; Checkpoint is a signed
// checkpoint (whose size may be larger). It is GET /v1/ledger/entries/{i}
// and the receipt of a consent change.
//
// Entry is the public leaf (what the tiles serve): the entry's type, time
// and seal, nothing of its body. Header and Opening are the entry's
// signed header and its opening (the statement the author signed, with
// its attestations; a break-glass justification for regulators only; never
// the patient's pseudonym), present only when the caller is entitled to
// the body: a party the entry names, the patient it is about, or a
// regulator. All three are the canonical bytes, served verbatim: check
// them as received (VerifyEntry), never re-encoded.
type EntryProof struct {
	Index      uint64           `json:"index"`
	TreeSize   uint64           `json:"tree_size"`
	Entry      json.RawMessage  `json:"entry"`
	Header     json.RawMessage  `json:"header,omitempty"`
	Opening    json.RawMessage  `json:"opening,omitempty"`
	LeafHash   tlog.Hash        `json:"leaf_hash"`
	Proof      tlog.RecordProof `json:"inclusion_proof"`
	RootHash   tlog.Hash        `json:"root_hash"`
	Checkpoint string           `json:"checkpoint"`
}

// ConsistencyProof proves that the tree of size To extends the tree of
// size From.
type ConsistencyProof struct {
	From     uint64      `json:"from"`
	To       uint64      `json:"to"`
	FromRoot tlog.Hash   `json:"from_root"`
	ToRoot   tlog.Hash   `json:"to_root"`
	Proof    []tlog.Hash `json:"consistency_proof"`
}

// ConsentResponse is the body of POST /v1/consents and of a revocation:
// the grant and its receipt.
type ConsentResponse struct {
	Consent Consent    `json:"consent"`
	Receipt EntryProof `json:"receipt"`
}

// ConsentList is a page of grants.
type ConsentList struct {
	Consents   []Consent `json:"consents"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// AccessEvent is one logged access decision.
type AccessEvent struct {
	LedgerIndex       uint64    `json:"ledger_index"`
	Time              time.Time `json:"time"`
	Requester         string    `json:"requester"`
	RecordID          string    `json:"record_id"`
	Patient           string    `json:"patient"`
	Category          string    `json:"category"`
	Purpose           string    `json:"purpose"`
	Decision          string    `json:"decision"`
	Reason            string    `json:"reason"`
	GrantID           string    `json:"grant_id,omitempty"`
	BreakGlass        bool      `json:"break_glass"`
	JustificationHash string    `json:"justification_hash,omitempty"`
	// JustificationCommitment is the salted commitment to a break-glass
	// reason; Justification the reason itself, shown to regulators only,
	// checked against the commitment.
	JustificationCommitment string `json:"justification_commitment,omitempty"`
	Justification           string `json:"justification,omitempty"`
	// RequestID is the gateway's own ID of the request that was decided;
	// ClientRequestID the caller's X-Request-ID, client-supplied.
	RequestID       string `json:"request_id"`
	ClientRequestID string `json:"client_request_id,omitempty"`
}

// EventList is a page of access events, newest first.
type EventList struct {
	Events     []AccessEvent `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
	// AsOf is the ledger size the list is complete for: every access
	// decision at an index below it that the query selects is in this
	// page or, below its cursor, a later one. A gateway whose access log
	// is too far behind its ledger answers 503 (catching_up) instead.
	AsOf uint64 `json:"as_of,omitempty"`
}
