package federation

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// Paths of the gateway-to-gateway routes (served by the holder).
const (
	RecordsPath  = "/v1/federation/records/"
	PatientsPath = "/v1/federation/patients/"
)

// DefaultHopTimeout bounds one request to another member's gateway: long
// enough for the holder to reach the head of its ledger
// (access.DefaultHeadTimeout) and log its decision.
const DefaultHopTimeout = 10 * time.Second

// MaxAnswer bounds a holder's answer.
const MaxAnswer = client.MaxResponse

// Errors across the hop. None of them is a 404: a holder that cannot be
// asked is never presented as a denial.
var (
	// ErrHolderUnreachable: the holder's gateway did not answer (refused
	// connection, timeout, a reset): a 502.
	ErrHolderUnreachable = errors.New("federation: the holder's gateway is unreachable")
	// ErrHolderUnavailable: the holder's gateway answered that it cannot
	// decide now (a 503 of its own: ledger not caught up, no quorum).
	ErrHolderUnavailable = errors.New("federation: the holder's gateway is unavailable")
	// ErrHolderFailed: the holder's gateway answered with an error other
	// than a denial or unavailability, or an answer that does not verify
	// (ErrBadAnswer): a 502.
	ErrHolderFailed = errors.New("federation: the holder's gateway failed")

	// ErrLocatorUnreachable, ErrLocatorUnavailable and ErrLocatorFailed
	// are the same three for the custodian's gateway, which answers the
	// consortium-wide listing (List): the listing could not be made,
	// which says nothing about the patient's records.
	ErrLocatorUnreachable = errors.New("federation: the custodian's gateway (the record locator) is unreachable")
	ErrLocatorUnavailable = errors.New("federation: the custodian's gateway (the record locator) is unavailable")
	ErrLocatorFailed      = errors.New("federation: the custodian's gateway (the record locator) failed")
)

// Peer is a member gateway: its ledger ID and registered base URL.
type Peer struct {
	Gateway string
	BaseURL string
}

// Directory is the registry as the reader side reads it.
type Directory interface {
	// Home returns the home gateway of org; ok false if org is not
	// registered.
	Home(ctx context.Context, org string) (p Peer, ok bool, err error)
	// Gateway returns a registered gateway; ok false if there is none of
	// that ID.
	Gateway(ctx context.Context, id string) (p Peer, ok bool, err error)
}

// Local is this gateway's own consent-gated read and listing
// (access.Service): Locate lists, besides the records held here, those
// whose registrations this gateway opened (at the custodian, every
// holder's).
type Local interface {
	Read(ctx context.Context, req access.ReadRequest) (access.Result, error)
	Locate(ctx context.Context, req access.ListRequest) ([]records.Record, error)
}

var _ Local = (*access.Service)(nil)

// Config holds a Service's dependencies.
type Config struct {
	// Self is this gateway (its ID and base URL).
	Self Peer
	// Custodian is the gateway ID of the consortium's patient custodian,
	// which opens every record registration and consent of its patients
	// and so answers the consortium-wide listing (List). "" or Self's ID:
	// this gateway answers it itself.
	Custodian string
	// Signer signs this gateway's request tokens (its node key).
	Signer *Signer
	// SealKey is this gateway's X25519 sealing key: answers are sealed
	// to it.
	SealKey   *ecdh.PrivateKey
	Registry  Registry
	Directory Directory
	Local     Local
	// HTTP is the client of the hops (nil: one with no timeout of its
	// own; every hop is bounded by HopTimeout).
	HTTP *http.Client
	// HopTimeout: see DefaultHopTimeout.
	HopTimeout time.Duration
	Logger     *slog.Logger
}

// Service is the reader's side: the consortium-wide locator and the
// federated read. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service; a missing dependency is a programming error and
// panics.
func New(cfg Config) *Service {
	if cfg.Signer == nil || cfg.SealKey == nil || cfg.Registry == nil || cfg.Directory == nil || cfg.Local == nil || cfg.Self.Gateway == "" {
		panic("federation.New: missing dependency")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	if cfg.HopTimeout <= 0 {
		cfg.HopTimeout = DefaultHopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// Located is a record a listing found, with where it is held.
type Located struct {
	Record records.Record
	// Home is the holder's home gateway.
	Home Peer
	// Local: held at this gateway.
	Local bool
}

// Listing is the answer of List.
type Listing struct {
	Records []Located
	// Next is the cursor of the next page, "" after the last.
	Next string
}

// List is the consent-aware locator: the records of req.Patient that
// req.Caller may read for req.Purpose across the consortium, each with
// its holder's home gateway. It is answered from the ledger and the
// consent state, not by asking the holders: the consortium's custodian
// opens every record.registered entry and every consent of its patients
// (consortium/routing), and decides on them exactly as a holder does
// (access.Service.Locate). At the custodian that is a local call;
// anywhere else one hop to the custodian's gateway, authenticated as this
// gateway acting for the caller's org and answered sealed to this
// gateway. No other member learns that the patient was asked about, and
// a holder that is down does not make the listing incomplete (the read
// then says it cannot reach the holder). What the caller may not read is
// never sent, so it is indistinguishable from nothing. If the custodian
// cannot be asked, the listing fails (ErrLocatorUnreachable,
// ErrLocatorUnavailable, ErrLocatorFailed): it is never silently partial.
//
// A listing is paged (pg), newest registration first (access.PageRecords);
// pg.Cursor is a previous page's Next (consent.ErrInvalidCursor if it is
// not one). A record whose holder has no home in this gateway's registry
// is left out (and logged): it could not be read from here.
func (s *Service) List(ctx context.Context, req access.ListRequest, pg consent.Page) (Listing, error) {
	if _, _, err := pg.Before(); err != nil {
		return Listing{}, err
	}
	var (
		recs []records.Record
		next string
	)
	if s.cfg.Custodian == "" || s.cfg.Custodian == s.cfg.Self.Gateway {
		all, err := s.cfg.Local.Locate(ctx, req)
		if err != nil {
			return Listing{}, err
		}
		if recs, next, err = access.PageRecords(all, pg); err != nil {
			return Listing{}, err
		}
	} else {
		p, ok, err := s.cfg.Directory.Gateway(ctx, s.cfg.Custodian)
		if err != nil {
			return Listing{}, fmt.Errorf("federation: the custodian's gateway: %w", err)
		}
		if !ok {
			return Listing{}, fmt.Errorf("%w: gateway %s is not registered", ErrLocatorFailed, s.cfg.Custodian)
		}
		if recs, next, err = s.listAt(ctx, p, req, pg); err != nil {
			return Listing{}, locatorError(err)
		}
	}
	out := Listing{Next: next}
	for _, r := range recs {
		home, ok, err := s.cfg.Directory.Home(ctx, r.Holder)
		if err != nil {
			return Listing{}, fmt.Errorf("federation: holder's home: %w", err)
		}
		if !ok {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "federated listing: record of an org with no home dropped",
				slog.String("holder", r.Holder))
			continue
		}
		out.Records = append(out.Records, Located{Record: r, Home: home, Local: home.Gateway == s.cfg.Self.Gateway})
	}
	return out, nil
}

// locatorError is a hop's error as the custodian's (its text kept, its
// holder sentinel not: the custodian is not a holder being read).
func locatorError(err error) error {
	switch {
	case errors.Is(err, ErrHolderUnreachable):
		return fmt.Errorf("%w: %v", ErrLocatorUnreachable, err)
	case errors.Is(err, ErrHolderUnavailable):
		return fmt.Errorf("%w: %v", ErrLocatorUnavailable, err)
	case errors.Is(err, ErrHolderFailed), errors.Is(err, access.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrLocatorFailed, err)
	}
	return err
}

// listAt asks p for one page of its listing (Locate) for the caller.
func (s *Service) listAt(ctx context.Context, p Peer, req access.ListRequest, pg consent.Page) ([]records.Record, string, error) {
	if err := records.ValidatePatient(req.Patient); err != nil {
		return nil, "", err
	}
	q := url.Values{}
	if req.Purpose != "" {
		q.Set("purpose", string(req.Purpose))
	}
	if pg.Cursor != "" {
		q.Set("cursor", pg.Cursor)
	}
	q.Set("limit", strconv.Itoa(pg.Size()))
	body, err := s.hop(ctx, p, PatientsPath+url.PathEscape(req.Patient)+"/records", q, req.Caller, SealGateway, nil)
	if err != nil {
		return nil, "", err
	}
	var list client.RecordList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, "", fmt.Errorf("%w: listing: %v", ErrHolderFailed, err)
	}
	if len(list.Records) > pg.Size() || len(list.NextCursor) > 256 {
		return nil, "", fmt.Errorf("%w: listing: %d records for a page of %d", ErrHolderFailed, len(list.Records), pg.Size())
	}
	out := make([]records.Record, 0, len(list.Records))
	for _, r := range list.Records {
		out = append(out, recordOf(r))
	}
	return out, list.NextCursor, nil
}

// ReadRequest is one read, here or at the holder's gateway.
type ReadRequest struct {
	access.ReadRequest
	// Holder is the org holding the record.
	Holder string
	// SealToOrg asks the holder to seal the content to the caller org's
	// registered encryption key; the answer is passed through (Result.
	// Sealed). Otherwise it is sealed to this gateway, which opens it.
	SealToOrg bool
}

// Result is a read's outcome.
type Result struct {
	// Local is set when the holder is homed here: the read was this
	// gateway's own (access.Service.Read).
	Local  bool
	Record records.Record
	// Content is the record's content (not for SealToOrg hops).
	Content []byte
	// Sealed is the holder's JWE to the caller org (SealToOrg hops).
	Sealed []byte
}

// Read reads a record held by req.Holder: here, if this gateway is its
// home (exactly the direct read), otherwise at the holder's home gateway,
// which decides and logs access.decided for the caller's org and seals the
// answer. A deny and a record that does not exist are access.ErrNotFound,
// as for a direct read; an unregistered holder too. A holder that cannot
// be asked is ErrHolderUnreachable, one that cannot decide now
// ErrHolderUnavailable.
func (s *Service) Read(ctx context.Context, req ReadRequest) (Result, error) {
	home, ok, err := s.cfg.Directory.Home(ctx, req.Holder)
	if err != nil {
		return Result{}, fmt.Errorf("federation: holder's home: %w", err)
	}
	if !ok {
		return Result{}, access.ErrNotFound
	}
	req.ReadRequest.Holder = req.Holder
	if home.Gateway == s.cfg.Self.Gateway {
		res, err := s.cfg.Local.Read(ctx, req.ReadRequest)
		if err != nil {
			return Result{}, err
		}
		if res.Record.Holder != req.Holder {
			// Held here, by another org than the one named: as missing.
			return Result{}, access.ErrNotFound
		}
		return Result{Local: true, Record: res.Record, Content: res.Content}, nil
	}
	q := url.Values{"holder": {req.Holder}}
	if req.Purpose != "" {
		q.Set("purpose", string(req.Purpose))
	}
	hdr := http.Header{}
	if req.Justification != "" {
		hdr.Set(HeaderBreakGlass, req.Justification)
	}
	if req.RequestID != "" {
		hdr.Set("X-Request-ID", req.RequestID)
	}
	seal := SealGateway
	if req.SealToOrg {
		seal = SealOrg
	}
	body, err := s.hop(ctx, home, RecordsPath+url.PathEscape(req.RecordID), q, req.Caller, seal, hdr)
	if err != nil {
		return Result{}, err
	}
	if req.SealToOrg {
		return Result{Record: records.Record{ID: req.RecordID, Holder: req.Holder}, Sealed: body}, nil
	}
	var fr client.FederatedRecord
	if err := json.Unmarshal(body, &fr); err != nil {
		return Result{}, fmt.Errorf("%w: record: %v", ErrHolderFailed, err)
	}
	if fr.Record.ID != req.RecordID || fr.Record.Holder != req.Holder {
		return Result{}, fmt.Errorf("%w: it answered with another record", ErrHolderFailed)
	}
	return Result{Record: recordOf(fr.Record), Content: fr.Content}, nil
}

// HeaderBreakGlass carries a break-glass reason across the hop (as the
// API's own header).
const HeaderBreakGlass = "X-Break-Glass-Reason"

// hop sends one signed request to p and returns its opened answer (or,
// for seal SealOrg, the JWE as it came).
func (s *Service) hop(ctx context.Context, p Peer, path string, q url.Values, caller access.Caller, seal string, hdr http.Header) ([]byte, error) {
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HopTimeout)
	defer cancel()
	base, err := url.Parse(strings.TrimRight(p.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: gateway %q has no usable base URL", ErrHolderUnreachable, p.Gateway)
	}
	u := base.JoinPath(path)
	if !strings.HasPrefix(u.Path, "/") { // a base URL without a path
		u.Path = "/" + u.Path
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
	}
	u.RawQuery = q.Encode()
	var scopes []string
	for _, sc := range caller.Scopes {
		scopes = append(scopes, string(sc))
	}
	tok, claims, err := s.cfg.Signer.Sign(Claims{
		Org: caller.Org, Audience: p.Gateway, Method: http.MethodGet,
		Target: CanonicalTarget(&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}), Scope: strings.Join(scopes, " "), Seal: seal,
	})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(hctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHolderUnreachable, err)
	}
	for k, v := range hdr {
		hreq.Header[k] = v
	}
	hreq.Header.Set("Authorization", "Bearer "+tok)
	hreq.Header.Set("Accept", records.JOSEContentType)
	resp, err := s.cfg.HTTP.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the caller went away
		}
		return nil, fmt.Errorf("%w: gateway %s: %v", ErrHolderUnreachable, p.Gateway, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: gateway %s: reading the answer: %v", ErrHolderUnreachable, p.Gateway, err)
	}
	if len(raw) > MaxAnswer {
		return nil, fmt.Errorf("%w: gateway %s: answer over %d bytes", ErrHolderFailed, p.Gateway, MaxAnswer)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, access.ErrNotFound // a deny, or no such record: the holder's one answer
	case resp.StatusCode == http.StatusNotAcceptable && seal == SealOrg:
		return nil, records.ErrNoEncryptionKey
	case resp.StatusCode == http.StatusServiceUnavailable:
		return nil, fmt.Errorf("%w: gateway %s: %s", ErrHolderUnavailable, p.Gateway, errorText(raw))
	default:
		return nil, fmt.Errorf("%w: gateway %s: status %d: %s", ErrHolderFailed, p.Gateway, resp.StatusCode, errorText(raw))
	}
	if seal == SealOrg {
		return raw, nil
	}
	gk, ok := s.cfg.Registry.Authority().Gateway(p.Gateway)
	if !ok {
		return nil, fmt.Errorf("%w: gateway %s is not registered", ErrHolderFailed, p.Gateway)
	}
	body, err := Open(raw, s.cfg.SealKey, p.Gateway, gk.Public, claims.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway %s: %w", ErrHolderFailed, p.Gateway, err)
	}
	return body, nil
}

// errorText is the holder's error message, for the log.
func errorText(raw []byte) string {
	var e client.Error
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error + ": " + e.Message
	}
	if len(raw) > 200 {
		raw = raw[:200]
	}
	return string(raw)
}

func recordOf(r client.Record) records.Record {
	return records.Record{
		ID: r.ID, Holder: r.Holder, Category: records.Category(r.Category), ResourceType: r.ResourceType,
		ContentType: r.ContentType, Size: r.Size, Commitment: r.Commitment, LedgerIndex: r.LedgerIndex, CreatedAt: r.CreatedAt,
	}
}

// Orgs is the registry projection as the holder side reads it
// (registrystore.Store).
type Orgs interface {
	Org(ctx context.Context, id string) (auth.Org, error)
}

// Holder is the holder's side of the hop: it verifies request tokens and
// seals answers.
type Holder struct {
	verifier *Verifier
	gateway  string
	key      ed25519.PrivateKey
	reg      Registry
	orgs     Orgs
}

// NewHolder returns the holder side of gateway with its node key.
func NewHolder(gateway string, key ed25519.PrivateKey, reg Registry, orgs Orgs, now func() time.Time) *Holder {
	return &Holder{verifier: NewVerifier(gateway, reg, now), gateway: gateway, key: key, reg: reg, orgs: orgs}
}

// UseReplayCache makes the holder remember accepted request tokens in rc
// (see Verifier.UseReplayCache).
func (h *Holder) UseReplayCache(rc auth.ReplayCache) { h.verifier.UseReplayCache(rc) }

// Authorize verifies a request token for a request (method, target as
// CanonicalTarget) and returns its claims and the caller the read decides
// for: the token's org, of its registered kind (a hospital: no other kind
// reads records), with the token's scopes as far as the org's
// registration allows them. Errors wrap ErrInvalidToken (or are the
// registry's).
func (h *Holder) Authorize(ctx context.Context, token, method, target string) (Claims, access.Caller, error) {
	c, err := h.verifier.Verify(ctx, token, method, target)
	if err != nil {
		return Claims{}, access.Caller{}, err
	}
	org, err := h.orgs.Org(ctx, c.Org)
	if errors.Is(err, auth.ErrUnknownOrg) {
		return Claims{}, access.Caller{}, invalid("org %q is not in the registry projection", c.Org)
	}
	if err != nil {
		return Claims{}, access.Caller{}, err
	}
	if org.Kind != auth.KindHospital {
		return Claims{}, access.Caller{}, invalid("org %q is a %s, not a hospital", c.Org, org.Kind)
	}
	var scopes []auth.Scope
	for _, s := range strings.Fields(c.Scope) {
		sc := auth.Scope(s)
		if org.HasScope(sc) {
			scopes = append(scopes, sc)
			continue
		}
		// SMART resource scopes (system/Observation.rs) narrow
		// records.read: the org must hold records.read.
		if _, ok := auth.ParseSMARTScope(s); ok && org.HasScope(auth.ScopeRecordsRead) {
			scopes = append(scopes, sc)
		}
	}
	slices.Sort(scopes)
	return c, access.Caller{Org: c.Org, Kind: org.Kind, Scopes: slices.Compact(scopes)}, nil
}

// HomedHere reports whether org's home gateway is this one.
func (h *Holder) HomedHere(org string) bool {
	home, ok := h.reg.Authority().Home(org)
	return ok && home == h.gateway
}

// SealAnswer signs body for the request of c and seals it to the
// requesting gateway's registered sealing key.
func (h *Holder) SealAnswer(c Claims, body []byte) ([]byte, error) {
	gk, ok := h.reg.Authority().Gateway(c.Gateway)
	if !ok || gk.Seal == nil {
		return nil, fmt.Errorf("federation: gateway %q has no registered sealing key", c.Gateway)
	}
	return Seal(body, c.ID, h.gateway, h.key, gk.Seal)
}

var _ Registry = (*ledger.Node)(nil)
