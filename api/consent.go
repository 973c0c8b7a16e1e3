package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
)

// ConsentQueries are the consent and access-event queries, each for one
// viewer (access.Queries).
type ConsentQueries interface {
	Consents(ctx context.Context, v auth.Principal, p consent.Page) ([]consent.Grant, string, error)
	PatientConsents(ctx context.Context, v auth.Principal, patient string, p consent.Page) ([]consent.Grant, string, error)
	Consent(ctx context.Context, v auth.Principal, id string) (consent.Grant, error)
	AccessLog(ctx context.Context, v auth.Principal, patient string, p consent.Page) ([]consent.AccessEvent, string, error)
	AuditEvents(ctx context.Context, v auth.Principal, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error)
	// AccessLogPage and AuditEventsPage are AccessLog and AuditEvents
	// with the ledger position the page is complete for (as_of).
	AccessLogPage(ctx context.Context, v auth.Principal, patient string, p consent.Page) (access.EventPage, error)
	AuditEventsPage(ctx context.Context, v auth.Principal, f consent.AuditFilter, p consent.Page) (access.EventPage, error)
	AccessEvent(ctx context.Context, v auth.Principal, index uint64) (consent.AccessEvent, error)
}

var _ ConsentQueries = (*access.Queries)(nil)

// ConsentChanges are a patient's consent changes with receipts
// (access.Service).
type ConsentChanges interface {
	// GrantOnce and RevokeOnce take the write's identity from its
	// Idempotency-Key (consentWrite): a repeat never makes a second
	// change.
	GrantOnce(ctx context.Context, patient string, g consent.Grant, w access.Write) (consent.Grant, access.Receipt, error)
	RevokeOnce(ctx context.Context, patient, id string, w access.Write) (consent.Grant, access.Receipt, error)
}

var _ ConsentChanges = (*access.Service)(nil)

// Pseudonymizer maps patient IDs to ledger pseudonyms, and pseudonyms to
// the per-reader pseudonyms organisations are shown (ledger.Pseudonymizer).
type Pseudonymizer interface {
	Pseudonym(patient string) string
	ForReader(reader, pseudonym string) string
}

// Syncer brings the projections up to date with the log (ledger.Follower).
type Syncer interface {
	Sync(ctx context.Context, size uint64) error
}

// ConsentDeps are what the consent, access-log and audit routes need.
type ConsentDeps struct {
	Changes ConsentChanges
	Queries ConsentQueries
	Pseud   Pseudonymizer
}

// DefaultConsentPeriod is a grant's validity when the patient names no end.
const DefaultConsentPeriod = access.DefaultGrantPeriod

// MountConsent mounts consent, the patient's access log, the regulator's
// audit API and the FHIR views of consents and access events.
func (s *Server) MountConsent(d ConsentDeps) {
	s.consent = d
	g := s.engine.Group("/v1", s.authenticate)
	g.POST("/consents", s.requirePatient, s.limitBody(s.cfg.MaxJSONBody),
		s.idempotent("POST /v1/consents", consent.NewID, func(_ *gin.Context, id string) string { return "/v1/consents/" + id }), s.postConsent)
	g.GET("/consents", s.listConsents)
	g.GET("/consents/:id", s.getConsent)
	g.POST("/consents/:id/revoke", s.requirePatient, s.limitBody(s.cfg.MaxJSONBody),
		s.idempotent("POST /v1/consents/{id}/revoke", nil, func(c *gin.Context, _ string) string { return "/v1/consents/" + c.Param("id") }), s.revokeConsent)
	g.GET("/me/access-log", s.requirePatient, s.accessLog)
	g.GET("/audit/events", s.requireOrg(auth.ScopeAuditRead, auth.KindRegulator), s.auditEvents)
	s.mountFHIRConsent()
}

// catchUp applies every durable entry to the projections (through the
// syncer MountZK gives), so that a query sees every entry acknowledged
// before it.
func (s *Server) catchUp(ctx context.Context) error {
	n, err := s.ledger.Size(ctx)
	if err != nil {
		return err
	}
	return s.projections.Sync(ctx, n)
}

// nowUTC is the server's clock in UTC.
func (s *Server) nowUTC() time.Time { return s.now().UTC() }

// consentRequest is the body of POST /v1/consents. The patient is the
// token's subject; status, IDs and ledger fields are never accepted from
// the client (unknown fields are rejected).
type consentRequest client.ConsentRequest

// Validate is shallow; consent.Grant.Validate does the rest.
func (r *consentRequest) Validate() error {
	if (r.Grantee.Org == "") == (r.Grantee.Kind == "") {
		return badRequest("grantee needs exactly one of org and kind.")
	}
	return nil
}

// grant is the provision the patient asks for; the service sets the
// patient, the ID and the default period.
func (r *consentRequest) grant() consent.Grant {
	g := consent.Grant{
		Grantee:       consent.Grantee{Org: r.Grantee.Org, Kind: auth.Kind(r.Grantee.Kind)},
		Effect:        consent.Permit,
		Actions:       []consent.Action{consent.ActionRead},
		Categories:    r.Categories,
		RecordIDs:     r.RecordIDs,
		ResourceTypes: r.ResourceTypes,
	}
	if r.Decision != "" {
		g.Effect = consent.Effect(r.Decision)
	}
	if len(r.Actions) > 0 {
		g.Actions = nil
		for _, a := range r.Actions {
			g.Actions = append(g.Actions, consent.Action(a))
		}
	}
	for _, p := range r.Purposes {
		g.Purposes = append(g.Purposes, consent.Purpose(p))
	}
	if r.NotBefore != nil {
		g.NotBefore = r.NotBefore.UTC()
	}
	if r.NotAfter != nil {
		g.NotAfter = r.NotAfter.UTC()
	}
	return g
}

// grantView is a consent grant as the API shows it.
type grantView = client.Consent

func strs[T ~string](in []T) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		out = append(out, string(v))
	}
	return out
}

func viewGrant(g consent.Grant, now time.Time) grantView {
	v := grantView{
		ID: g.ID, Patient: g.Patient, Decision: string(g.Effect), Actions: strs(g.Actions),
		Categories: g.Categories, RecordIDs: g.RecordIDs, ResourceTypes: g.ResourceTypes,
		Purposes: strs(g.Purposes), NotBefore: g.NotBefore.UTC(), NotAfter: g.NotAfter.UTC(),
		Status: string(g.Status(now)), LedgerIndex: g.GrantedIndex, GrantedAt: g.GrantedAt.UTC(),
		Signed: g.Signed,
	}
	v.Grantee.Org, v.Grantee.Kind = g.Grantee.Org, string(g.Grantee.Kind)
	if g.Revoked {
		idx, at := g.RevokedIndex, g.RevokedAt.UTC()
		v.RevokedIndex, v.RevokedAt = &idx, &at
	}
	return v
}

// consentResponse is the body of POST /v1/consents and of a revocation.
type consentResponse = client.ConsentResponse

// viewReceipt renders a consent receipt as an entry proof: the patient's
// own entry, with its header and opening (without the pseudonym).
func viewReceipt(r access.Receipt) EntryProof {
	return EntryProof{
		Index: r.Index, TreeSize: r.TreeSize, Entry: r.Entry, Header: r.Header, Opening: r.Opening,
		LeafHash: tlog.RecordHash(r.Entry), Proof: r.Proof, RootHash: r.RootHash, Checkpoint: string(r.Checkpoint),
	}
}

func (s *Server) postConsent(c *gin.Context) {
	var req consentRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	pseud := s.consent.Pseud.Pseudonym(principal(c).Patient)
	stored, rc, err := s.consent.Changes.GrantOnce(c.Request.Context(), pseud, req.grant(), consentWrite(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/consents/"+stored.ID)
	s.exactJSON(c, http.StatusCreated, consentResponse{Consent: viewGrant(stored, s.nowUTC()), Receipt: viewReceipt(rc)})
}

// page reads cursor and limit query parameters.
func page(c *gin.Context) (consent.Page, error) {
	p := consent.Page{Cursor: c.Query("cursor")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > consent.MaxPageSize {
			return p, badRequest("limit must be between 1 and " + strconv.Itoa(consent.MaxPageSize) + ".")
		}
		p.Limit = n
	}
	return p, nil
}

// grantList is a page of grants.
type grantList = client.ConsentList

func (s *Server) listConsents(c *gin.Context) {
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	grants, next, err := s.consent.Queries.Consents(c.Request.Context(), principal(c), pg)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.nowUTC()
	out := grantList{Consents: []grantView{}, NextCursor: next}
	for _, g := range grants {
		out.Consents = append(out.Consents, s.viewGrantFor(principal(c), g, now))
	}
	c.JSON(http.StatusOK, out)
}

// viewGrantFor is viewGrant as viewer may see it: an organisation is
// shown the patient under its own per-reader pseudonym, never the ledger
// pseudonym, which is the same at every hospital and would link the
// patient across them.
func (s *Server) viewGrantFor(viewer auth.Principal, g consent.Grant, now time.Time) grantView {
	v := viewGrant(g, now)
	if viewer.Org != "" {
		v.Patient = s.consent.Pseud.ForReader(viewer.Org, g.Patient)
	}
	return v
}

func (s *Server) getConsent(c *gin.Context) {
	g, err := s.consent.Queries.Consent(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.viewGrantFor(principal(c), g, s.nowUTC()))
}

// emptyBody accepts an empty body or {}.
type emptyBody struct{}

func (emptyBody) Validate() error { return nil }

func (s *Server) revokeConsent(c *gin.Context) {
	if c.Request.ContentLength != 0 {
		var b emptyBody
		if err := decodeJSON(c, &b); err != nil {
			s.fail(c, err)
			return
		}
	}
	pseud := s.consent.Pseud.Pseudonym(principal(c).Patient)
	stored, rc, err := s.consent.Changes.RevokeOnce(c.Request.Context(), pseud, c.Param("id"), consentWrite(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.exactJSON(c, http.StatusOK, consentResponse{Consent: viewGrant(stored, s.nowUTC()), Receipt: viewReceipt(rc)})
}

// accessEventView is one access decision.
type accessEventView = client.AccessEvent

func viewEvent(e consent.AccessEvent) accessEventView {
	return accessEventView{
		LedgerIndex: e.Index, Time: e.Time.UTC(), Requester: e.Requester, RecordID: e.RecordID,
		Patient: e.Patient, Category: e.Category, Purpose: string(e.Purpose), Decision: string(e.Decision),
		Reason: string(e.Reason), GrantID: e.GrantID, BreakGlass: e.BreakGlass,
		JustificationHash: e.JustificationHash, RequestID: e.RequestID,
		JustificationCommitment: e.JustificationCommitment, Justification: e.Justification,
		ClientRequestID: e.ClientRequestID,
	}
}

// eventList is a page of access events, newest first.
type eventList = client.EventList

func renderEvents(c *gin.Context, pg access.EventPage) {
	out := eventList{Events: []accessEventView{}, NextCursor: pg.Next, AsOf: pg.AsOf}
	for _, e := range pg.Events {
		out.Events = append(out.Events, viewEvent(e))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) accessLog(c *gin.Context) {
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.consent.Queries.AccessLogPage(c.Request.Context(), principal(c), "", pg)
	if err != nil {
		s.fail(c, err)
		return
	}
	renderEvents(c, out)
}

// auditFilter reads the regulator's filters. patient is a patient ID (or
// a pseudonym, "ps_…").
func auditFilter(c *gin.Context) (consent.AuditFilter, error) {
	f := consent.AuditFilter{Patient: c.Query("patient"), Org: c.Query("org"), Decision: consent.Effect(c.Query("decision"))}
	if v := c.Query("break_glass"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, badRequest("break_glass must be true or false.")
		}
		f.BreakGlass = &b
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, badRequest(name + " must be an RFC 3339 time.")
			}
			*dst = t
		}
	}
	return f, f.Validate()
}

func (s *Server) auditEvents(c *gin.Context) {
	f, err := auditFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.consent.Queries.AuditEventsPage(c.Request.Context(), principal(c), f, pg)
	if err != nil {
		s.fail(c, err)
		return
	}
	renderEvents(c, out)
}
