package access

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// DefaultReceiptTimeout bounds the wait for a signed checkpoint that
// covers a new consent entry.
const DefaultReceiptTimeout = 5 * time.Second

// ErrNotFound is the error of a read of a record that does not exist and,
// identically, of a read the caller may not make: callers must not be
// able to tell them apart. It is records.ErrNotFound.
var ErrNotFound = records.ErrNotFound

// Vault is the record vault as the gated read uses it (records.Vault).
type Vault interface {
	// Read loads a record's metadata, calls authorize with it and only if
	// authorize returns nil loads the sealed content and decrypts it.
	Read(ctx context.Context, id string, authorize func(records.Record) error) (records.Record, []byte, error)
	// ReadStream is Read with the content as a reader, decrypted as it
	// is read (the caller closes it).
	ReadStream(ctx context.Context, id string, authorize func(records.Record) error) (records.Record, io.ReadCloser, error)
	// ListByPatient lists a patient's visible records (metadata only).
	ListByPatient(ctx context.Context, patient string) ([]records.Record, error)
}

// Grants is the consent projection as the use cases read it
// (consentstore.Store).
type Grants interface {
	// GrantsFor returns the grants of patient (a pseudonym) that can
	// decide a request of org (of kind).
	GrantsFor(ctx context.Context, patient, org string, kind auth.Kind) ([]consent.Grant, error)
	// Grant returns one grant; consent.ErrNotFound if there is none.
	Grant(ctx context.Context, id string) (consent.Grant, error)
}

// GrantMatcher is implemented by a Grants that can load, for one
// request, just the grants that can decide it (consentstore.Store's
// index). A gated read uses it when Config.Grants has it, and GrantsFor
// otherwise; Decide gives the same decision on either.
type GrantMatcher interface {
	// GrantsMatching returns the grants of req.Patient that can decide
	// req (a superset of those consent.Decide considers), oldest first.
	GrantsMatching(ctx context.Context, req consent.Request) ([]consent.Grant, error)
}

// Log is the ledger as the use cases need it: appends, and reads and
// proofs for receipts (ledger.Log satisfies it).
type Log interface {
	ledger.Appender
	ledger.Reader
	ledger.Prover
}

// Orgs is the organisation registry as the consent changes read it
// (registrystore.Store): a grant may only name an organisation that is
// registered, of a kind that can be a grantee.
type Orgs interface {
	// Org returns the organisation registered under id, or an error
	// wrapping auth.ErrUnknownOrg if there is none.
	Org(ctx context.Context, id string) (auth.Org, error)
}

// Justifications keeps the openings of break-glass justification
// commitments where only regulators can read them
// (justificationstore.Store).
type Justifications interface {
	// Put stores j durably, keyed by its commitment.
	Put(ctx context.Context, j ledger.Justification) error
}

// Syncer brings the projections up to date with the log
// (ledger.Follower).
type Syncer interface {
	Sync(ctx context.Context, size uint64) error
}

// Head reports the position a node must have projected before it
// decides: the size of the log after the newest block it knows to be
// committed anywhere (comet.Log waits for this node to apply it first).
type Head interface {
	Head(ctx context.Context) (uint64, error)
}

// Replicator waits until the nodes this one is connected to have applied
// the first size entries (comet.Log). Revocations wait for it before they
// are acknowledged.
type Replicator interface {
	WaitReplicated(ctx context.Context, size uint64) error
}

// DefaultHeadTimeout bounds how long a read waits for its node to reach
// the head of the log, and a revocation for its peers to apply it.
const DefaultHeadTimeout = 5 * time.Second

// ErrNotCaughtUp: the node could not apply every committed entry it
// knows of within the head timeout, so it does not decide (a 503; the
// read can be retried). It wraps ledger.ErrUnavailable.
var ErrNotCaughtUp = fmt.Errorf("access: ledger not caught up: %w", ledger.ErrUnavailable)

// Config holds a Service's dependencies and settings. Vault, Grants,
// Orgs, Justifications, Log and Sync are required; zero settings take the
// documented defaults.
type Config struct {
	Vault          Vault
	Grants         Grants
	Orgs           Orgs
	Justifications Justifications
	Log            Log
	Sync           Syncer
	// Head, if set, is where reads and revocations decide: before each,
	// the projections are synced up to Head (see DefaultHeadTimeout).
	// Nil decides on the projections as they are (one node, where every
	// local change is projected before it is acknowledged).
	Head Head
	// Replicate, if set, is waited for (bounded by HeadTimeout) before a
	// revocation is acknowledged, so that reads that start at other nodes
	// after the acknowledgement decide under it.
	Replicate Replicator
	// HeadTimeout: see DefaultHeadTimeout.
	HeadTimeout time.Duration
	// Policy is the break-glass policy handed to consent.Decide (the zero
	// Policy disables break-glass).
	Policy consent.Policy
	// Now is the clock (time.Now).
	Now func() time.Time
	// ReceiptTimeout: see DefaultReceiptTimeout.
	ReceiptTimeout time.Duration
	// Preparer, if set, makes patient-signed consent changes possible
	// (PrepareGrant, PrepareRevoke, CommitSigned) and passkey
	// registration: the gateway's ledger node.
	Preparer Preparer
	// Passkeys, if set, are the patients' registered passkeys (the
	// consent projection): a patient with one can only change consents
	// with a passkey assertion (ErrSignatureRequired otherwise).
	Passkeys Passkeys
	// Registrations, if set, are the record registrations this gateway
	// opened on the ledger, whoever holds the records: Locate lists
	// from them.
	Registrations Registrations
}

// Registrations lists the records of a patient registered on the ledger
// by any holder, as far as this gateway opened their record.registered
// entries (records.Vault.Registered over recordstore's registrations
// index).
type Registrations interface {
	// Registered returns the patient's (identifier, not pseudonym)
	// registered records that are not shredded.
	Registered(ctx context.Context, patient string) ([]records.Record, error)
}

// Preparer prepares entries for attestations and appends them with them
// (ledger.Node).
type Preparer interface {
	Prepare(e ledger.Entry) (*ledger.Prepared, error)
	AppendPrepared(ctx context.Context, p *ledger.Prepared, atts []ledger.Attestation) (uint64, error)
}

// Passkeys gives a patient's registered passkeys (consentstore.Store).
type Passkeys interface {
	Passkeys(ctx context.Context, patient string) ([]consent.Passkey, error)
}

// Service runs the consent-gated use cases. It is safe for concurrent use.
type Service struct {
	cfg   Config
	locks stripes
}

// New returns a Service. A nil required dependency is a programming error
// and panics.
func New(cfg Config) *Service {
	if cfg.Vault == nil || cfg.Grants == nil || cfg.Orgs == nil || cfg.Justifications == nil || cfg.Log == nil || cfg.Sync == nil {
		panic("access.New: nil dependency")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReceiptTimeout <= 0 {
		cfg.ReceiptTimeout = DefaultReceiptTimeout
	}
	if cfg.HeadTimeout <= 0 {
		cfg.HeadTimeout = DefaultHeadTimeout
	}
	return &Service{cfg: cfg}
}

// atHead syncs the projections up to the head of the log (Config.Head),
// waiting at most HeadTimeout; ErrNotCaughtUp if the node cannot get
// there in time.
func (s *Service) atHead(ctx context.Context) error {
	if s.cfg.Head == nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HeadTimeout)
	defer cancel()
	size, err := s.cfg.Head.Head(hctx)
	if err == nil {
		err = s.cfg.Sync.Sync(hctx, size)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrNotCaughtUp, err)
	default:
		return fmt.Errorf("access: reach the head of the ledger: %w", err)
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// stripes is a fixed set of read-write locks, one stripe per patient
// pseudonym hash.
type stripes [256]sync.RWMutex

func (l *stripes) of(patient string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(patient))
	return &l[h.Sum32()%uint32(len(l))]
}

// Caller is the organisation a request comes from.
type Caller struct {
	Org  string
	Kind auth.Kind
	// Scopes are the scopes of the caller's token. It reads only records
	// of the FHIR resource types they cover (auth.Principal.MayReadResource:
	// system/records.read covers every record, system/Observation.rs only
	// Observation records); no scope covers nothing, the holder's own
	// records included.
	Scopes []auth.Scope
}

// MayRead reports whether the caller's token covers records of FHIR
// resource type rt ("" for a record that is not FHIR).
func (c Caller) MayRead(rt string) bool {
	return auth.Principal{Org: c.Org, Kind: c.Kind, Scopes: c.Scopes}.MayReadResource(rt)
}

// ReadRequest is one gated read.
type ReadRequest struct {
	Caller   Caller
	RecordID string
	// Purpose is the declared purpose of use ("" is none, which no grant
	// covers).
	Purpose consent.Purpose
	// Justification is a break-glass reason (purpose ETREAT). The ledger
	// gets only a salted commitment to it; the opening (salt and reason)
	// is kept for regulators (Config.Justifications). Never logged.
	Justification string
	// RequestID ties the ledger entry to the transport's request: the
	// gateway's own ID, never one a client chose (empty: Read makes
	// one).
	RequestID string
	// ResourceType, when set, is the FHIR resource type the caller asks
	// for (GET /fhir/Observation/{id}): a record of another type is
	// ErrNotFound, before anything is decided or logged.
	ResourceType string
	// ClientRequestID is the caller's own request ID (X-Request-ID), kept
	// alongside and marked client-supplied.
	ClientRequestID string
	// Holder, when set, is the org the caller names as the record's
	// holder (a federated read: GET /v1/holders/{holder}/records/{id} at
	// the caller's gateway, sent on to the holder's). A record held by
	// another org is read as one that does not exist, and a not-found
	// decision is logged under Holder, which must be homed at this
	// gateway, instead of the caller's org, which is homed at another
	// gateway (that may not author entries for it).
	Holder string
}

// Result is the outcome of a gated read.
type Result struct {
	// Record and Content are set only on a permit (Content by Read).
	Record  records.Record
	Content []byte
	// Body is the content as a reader, set only on a permit by
	// ReadStream; the caller must close it.
	Body io.ReadCloser
	// Decision is the decision logged (zero if none was reached: the
	// record does not exist, or the decision could not be logged).
	Decision consent.Decision
	// Index is the ledger index of the access.decided entry (valid when
	// Logged).
	Index  uint64
	Logged bool
}

// Read is the consent-gated read: it brings the projections to the head
// of the log (Config.Head), loads the record's metadata, decides, appends
// access.decided and waits for it to be durable, and only then loads the
// record's sealed content and decrypts it (records.Vault.Read): up to the
// response, a deny does no work that depends on the record's size.
// The holder always may read its own records (logged as permit.holder).
//
// A deny, and a record that does not exist, are both ErrNotFound, and up
// to the response they do the same work: a read of a missing (or pending,
// or shredded) record still loads grants, for a placeholder patient with
// the same queries, and appends access.decided with reason
// consent.ReasonDenyNotFound (no patient, no category), so that probing
// for record IDs shows in the regulator's audit and takes as long as a
// denied read. The holder's own read loads grants too. If the decision
// cannot be logged nothing is served: the ledger's error is returned
// (wrapping, e.g., ledger.ErrUnavailable).
//
// A record whose resource type the caller's token does not cover
// (Caller.MayRead), or not of the type asked for (ReadRequest.ResourceType),
// is read exactly as a record that does not exist: nothing of it is
// decided on, and the not-found decision is logged, so a caller cannot
// tell a record of another type from no record by the work done.
func (s *Service) Read(ctx context.Context, req ReadRequest) (Result, error) {
	var content []byte
	res, err := s.read(ctx, req, func(authorize func(records.Record) error) (records.Record, error) {
		rec, c, err := s.cfg.Vault.Read(ctx, req.RecordID, authorize)
		content = c
		return rec, err
	})
	if err == nil {
		res.Content = content
	}
	return res, err
}

// ReadStream is Read with the content as a reader (Result.Body, which
// the caller must close), decrypted as it is read
// (records.Vault.ReadStream): for records too large to hold in memory.
// Up to the content, what it does, decides and logs is what Read does.
func (s *Service) ReadStream(ctx context.Context, req ReadRequest) (Result, error) {
	var body io.ReadCloser
	res, err := s.read(ctx, req, func(authorize func(records.Record) error) (records.Record, error) {
		rec, b, err := s.cfg.Vault.ReadStream(ctx, req.RecordID, authorize)
		body = b
		return rec, err
	})
	if err == nil {
		res.Body = body
	} else if body != nil {
		body.Close()
	}
	return res, err
}

// read is Read and ReadStream: fetch is the vault's read, given the
// authorization step.
func (s *Service) read(ctx context.Context, req ReadRequest, fetch func(authorize func(records.Record) error) (records.Record, error)) (Result, error) {
	var (
		res    Result
		called bool
	)
	if err := s.atHead(ctx); err != nil {
		return res, err
	}
	if req.RequestID == "" {
		// The ledger names every decision's request; a transport that
		// has no ID of its own gets a fresh one.
		req.RequestID = uuid.NewString()
	}
	// A justification is committed to, and its opening stored, before
	// anything else: the same work whether the record exists or not, and
	// no decision is logged whose reason a regulator could not open.
	jc, err := s.commitJustification(ctx, req.Justification)
	if err != nil {
		return res, err
	}
	rec, err := fetch(func(r records.Record) error {
		if !req.Caller.MayRead(r.ResourceType) || (req.ResourceType != "" && r.ResourceType != req.ResourceType) || (req.Holder != "" && r.Holder != req.Holder) {
			return ErrNotFound // as if missing: called stays false
		}
		called = true
		d, idx, err := s.decideAndLog(ctx, req, r, jc)
		if err != nil {
			return err
		}
		res.Decision, res.Index, res.Logged = d, idx, true
		if !d.Permitted() {
			return ErrNotFound
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) && !called {
		d, idx, lerr := s.decideAndLog(ctx, req, missingRecord(req.RecordID), jc)
		if lerr != nil {
			return res, lerr
		}
		res.Decision, res.Index, res.Logged = d, idx, true
		return res, ErrNotFound
	}
	if err != nil {
		return res, err
	}
	res.Record = rec
	return res, nil
}

// ErrInvalidJustification is a break-glass justification that cannot be
// committed to: longer than ledger.MaxJustificationLength bytes, or not
// UTF-8. It is bad input; nothing is read or logged.
var ErrInvalidJustification = errors.New("access: invalid break-glass justification")

// JustificationError is ErrInvalidJustification with a message for the
// caller.
type JustificationError struct{ Message string }

func (e *JustificationError) Error() string {
	return "access: invalid break-glass justification: " + e.Message
}

// Unwrap returns ErrInvalidJustification.
func (e *JustificationError) Unwrap() error { return ErrInvalidJustification }

// PublicMessage is the text a transport may show the caller.
func (e *JustificationError) PublicMessage() string { return "Break-glass reason: " + e.Message + "." }

// commitJustification returns the hex commitment to a break-glass reason
// ("" for none), after storing its opening.
func (s *Service) commitJustification(ctx context.Context, reason string) (string, error) {
	if reason == "" {
		return "", nil
	}
	j, err := ledger.NewJustification(reason)
	if err != nil {
		return "", &JustificationError{Message: fmt.Sprintf("must be at most %d bytes of UTF-8", ledger.MaxJustificationLength)}
	}
	if err := s.cfg.Justifications.Put(ctx, j); err != nil {
		return "", fmt.Errorf("access: keep the break-glass justification: %w", err)
	}
	return ledger.JustificationCommitment(j.Salt, j.Reason).String(), nil
}

// placeholderPatient is the pseudonym the grants of a read of a missing
// record are loaded for: of the pseudonyms' form (so the queries and the
// indexes used are those of a real read), and no patient's (pseudonyms
// are HMAC outputs).
const placeholderPatient = "ps_0000000000000000000000000000000000000000000000000000000000000000"

// maxLoggedID bounds the record ID a not-found decision logs; longer or
// unsafe IDs (never a record's) are logged as invalidRecordID.
const (
	maxLoggedID     = 128
	invalidRecordID = "invalid-id"
)

// missingRecord is the stand-in a read of a record that does not exist
// decides on: no holder, the placeholder patient, and the ID asked for
// when it is safe to log.
func missingRecord(id string) records.Record {
	if !safeID(id) {
		id = invalidRecordID
	}
	return records.Record{ID: id, Patient: placeholderPatient}
}

func safeID(id string) bool {
	if id == "" || len(id) > maxLoggedID {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c)) {
			return false
		}
	}
	return true
}

// consentRequest is the consent.Request for caller reading r.
func consentRequest(c Caller, r records.Record, purpose consent.Purpose, justification string) consent.Request {
	return consent.Request{
		Requester:     c.Org,
		RequesterKind: c.Kind,
		Action:        consent.ActionRead,
		RecordID:      r.ID,
		Patient:       r.Patient,
		Category:      string(r.Category),
		ResourceType:  r.ResourceType,
		Purpose:       purpose,
		Justification: justification,
	}
}

// decideAndLog decides req on r and appends the decision, holding r's
// patient stripe shared from loading the grants until the entry is
// durable.
func (s *Service) decideAndLog(ctx context.Context, req ReadRequest, r records.Record, justificationCommitment string) (consent.Decision, uint64, error) {
	mu := s.locks.of(r.Patient)
	mu.RLock()
	defer mu.RUnlock()
	creq := consentRequest(req.Caller, r, req.Purpose, req.Justification)
	// Grants are loaded on every path (the holder's own read, a missing
	// record), so that no path does less work than a denied read.
	grants, err := s.grantsFor(ctx, creq)
	if err != nil {
		return consent.Decision{}, 0, fmt.Errorf("access: load grants: %w", err)
	}
	d := consent.Decide(creq, grants, s.now(), s.cfg.Policy)
	switch {
	case r.Holder == "":
		// The record does not exist: nothing about a patient is logged.
		creq.Patient, creq.Category, creq.ResourceType = "", "", ""
		d = consent.Decision{Effect: consent.Deny, Reason: consent.ReasonDenyNotFound, BreakGlass: d.BreakGlass}
	case r.Holder == req.Caller.Org:
		d = consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitHolder}
	}
	body := d.LedgerBody(creq, req.RequestID)
	body.ClientRequestID = req.ClientRequestID
	body.JustificationCommitment = justificationCommitment
	// The holder decides and logs (its home gateway authors the entry);
	// a read of a record that does not exist has no holder and is logged
	// for the caller, whose gateway answered it.
	org := r.Holder
	if org == "" {
		org = req.Caller.Org
		if req.Holder != "" {
			org = req.Holder // federated: the caller is homed elsewhere
		}
	}
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		return d, 0, fmt.Errorf("access: access entry: %w", err)
	}
	idx, err := s.cfg.Log.Append(ctx, e)
	if err != nil {
		// Nothing is served without a durable log entry.
		return d, 0, fmt.Errorf("access: log access decision: %w", err)
	}
	// The access-event projection is not updated here, on the hot path:
	// the queries that show events catch it up first.
	return d, idx, nil
}

// grantsFor loads the grants that can decide creq: through the index
// when the store has one (GrantMatcher), else every grant of the patient
// naming the requester.
func (s *Service) grantsFor(ctx context.Context, creq consent.Request) ([]consent.Grant, error) {
	if m, ok := s.cfg.Grants.(GrantMatcher); ok {
		return m.GrantsMatching(ctx, creq)
	}
	return s.cfg.Grants.GrantsFor(ctx, creq.Patient, creq.Requester, creq.RequesterKind)
}

// ListRequest asks for the records of one patient that a caller may read.
type ListRequest struct {
	Caller Caller
	// Patient is the patient's identifier (not the pseudonym).
	Patient string
	Purpose consent.Purpose
}

// Readable returns the metadata of the records of a patient held here
// that the caller may read for the purpose: its own, and those a grant
// permits. Listings are not logged per record, and break-glass does not
// apply to them; the others are left out without a trace, not even a
// count. So are records of resource types the caller's token does not
// cover.
func (s *Service) Readable(ctx context.Context, req ListRequest) ([]records.Record, error) {
	return s.readable(ctx, req, false)
}

// Locate is Readable across every holder whose registrations this gateway
// opened (Config.Registrations): the records held here, from the vault,
// and those registered on the ledger by other holders, from their
// record.registered entries, decided on this gateway's consent state. At
// a consortium's custodian, which opens every registration and consent of
// its patients, that is the consortium-wide listing the locator answers
// (federation.Service.List). Without Config.Registrations it is Readable.
func (s *Service) Locate(ctx context.Context, req ListRequest) ([]records.Record, error) {
	return s.readable(ctx, req, s.cfg.Registrations != nil)
}

func (s *Service) readable(ctx context.Context, req ListRequest, anywhere bool) ([]records.Record, error) {
	if err := s.atHead(ctx); err != nil {
		return nil, err
	}
	all, err := s.cfg.Vault.ListByPatient(ctx, req.Patient)
	if err != nil {
		return nil, err
	}
	if anywhere {
		elsewhere, err := s.cfg.Registrations.Registered(ctx, req.Patient)
		if err != nil {
			return nil, fmt.Errorf("access: load registrations: %w", err)
		}
		// A record held here is listed as the vault has it.
		here := make(map[[2]string]bool, len(all))
		for _, r := range all {
			here[[2]string{r.Holder, r.ID}] = true
		}
		for _, r := range elsewhere {
			if !here[[2]string{r.Holder, r.ID}] {
				all = append(all, r)
			}
		}
	}
	// Grants are always loaded, whether the patient has records or not,
	// and whoever holds them: a listing takes the same work either way.
	patient := placeholderPatient
	if len(all) > 0 {
		patient = all[0].Patient // every record listed has the same patient
	}
	grants, err := s.cfg.Grants.GrantsFor(ctx, patient, req.Caller.Org, req.Caller.Kind)
	if err != nil {
		return nil, fmt.Errorf("access: load grants: %w", err)
	}
	var out []records.Record
	now := s.now()
	for _, r := range all {
		if !req.Caller.MayRead(r.ResourceType) {
			continue
		}
		if r.Holder == req.Caller.Org {
			out = append(out, r)
			continue
		}
		if consent.Decide(consentRequest(req.Caller, r, req.Purpose, ""), grants, now, s.cfg.Policy).Permitted() {
			out = append(out, r)
		}
	}
	return out, nil
}
