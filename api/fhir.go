package api

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/records"
)

// The FHIR R4 endpoint at /fhir (see docs/fhir.md): the CapabilityStatement,
// Consent and AuditEvent reads and searches, and consent-gated reads and
// searches of records by resource type. Every error under /fhir is an
// OperationOutcome (the error boundary, Server.fail, renders it), every
// answer application/fhir+json.

// fhirBase is the path of the FHIR endpoint.
const fhirBase = "/fhir"

// isFHIRPath reports whether a request path is under the FHIR endpoint.
func isFHIRPath(p string) bool { return p == fhirBase || strings.HasPrefix(p, fhirBase+"/") }

// errFHIRNotAcceptable answers a request for a format other than JSON.
var errFHIRNotAcceptable = &Error{Status: http.StatusNotAcceptable, Code: "not_acceptable", Message: "Only FHIR JSON is served: _format=json or application/fhir+json."}

// fhirJSONTypes are the media types (and _format values) served as FHIR
// JSON. A '+' in an unencoded _format reads as a space.
var fhirJSONTypes = []string{"json", "application/json", fhir.ContentType, "application/json+fhir", "application/fhir json", "application/json fhir"}

// fhirFormat refuses, with 406 before anything else is done, a _format or
// an Accept header that allows no JSON.
func (s *Server) fhirFormat(c *gin.Context) {
	if f := c.Query("_format"); f != "" && !slices.Contains(fhirJSONTypes, strings.ToLower(strings.TrimSpace(f))) {
		s.fail(c, errFHIRNotAcceptable)
		return
	}
	if a := c.GetHeader("Accept"); a != "" && !acceptsFHIRJSON(a) {
		s.fail(c, errFHIRNotAcceptable)
		return
	}
	c.Next()
}

func acceptsFHIRJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
			continue
		}
		if mt == "*/*" || mt == "application/*" || slices.Contains(fhirJSONTypes[1:], mt) {
			return true
		}
	}
	return false
}

// mountFHIRBase mounts GET /fhir/metadata (anyone, like the discovery
// documents) and the FHIR routes' 404 and 405 (by the engine's NoRoute and
// NoMethod, through the error boundary).
func (s *Server) mountFHIRBase() {
	s.engine.GET(fhirBase+"/metadata", s.fhirFormat, s.fhirMetadata)
}

// fhirGroup is the authenticated FHIR route group.
func (s *Server) fhirGroup() *gin.RouterGroup {
	return s.engine.Group(fhirBase, s.fhirFormat, s.authenticate)
}

// mountFHIRConsent mounts the Consent and AuditEvent routes (MountConsent).
func (s *Server) mountFHIRConsent() {
	f := s.fhirGroup()
	f.GET("/Consent", s.fhirConsentSearch)
	f.GET("/Consent/:id", s.fhirConsentRead)
	f.GET("/AuditEvent", s.fhirAuditEventSearch)
	f.GET("/AuditEvent/:id", s.fhirAuditEventRead)
}

// mountFHIRRecords mounts the consent-gated record routes (MountRecords):
// /fhir/{ResourceType} for every resource type records accepts.
func (s *Server) mountFHIRRecords() {
	f := s.fhirGroup()
	f.GET("/:type", s.requireRecordReader, s.fhirRecordSearch)
	f.GET("/:type/:id", s.requireRecordReader, s.fhirRecordRead)
}

// keep returns the elements of in for which ok holds, in a new slice (in
// belongs to the query that returned it).
func keep[T any](in []T, ok func(T) bool) []T {
	var out []T
	for _, v := range in {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}

func renderFHIR(c *gin.Context, v any) {
	c.Header("Content-Type", fhir.ContentType)
	c.JSON(http.StatusOK, v)
}

// fhirURL is the absolute URL of a path under the FHIR base.
func (s *Server) fhirURL(path string) string { return s.cfg.BaseURL + fhirBase + path }

// fhirQuery reads the parameters of a FHIR search. What it reads is
// honoured, and only that is echoed in the self link; other parameters
// are ignored (FHIR's lenient handling) unless the client sends
// Prefer: handling=strict, which makes them a 400.
type fhirQuery struct {
	c        *gin.Context
	q        url.Values
	honoured url.Values
}

func newFHIRQuery(c *gin.Context) *fhirQuery {
	return &fhirQuery{c: c, q: c.Request.URL.Query(), honoured: url.Values{}}
}

// get returns the parameter's value; a repeated parameter is a 400.
func (f *fhirQuery) get(name string) (string, error) {
	vs := f.q[name]
	switch {
	case len(vs) == 0 || vs[0] == "" && len(vs) == 1:
		return "", nil
	case len(vs) > 1:
		return "", badRequest(name + " may be given once.")
	}
	f.honoured.Set(name, vs[0])
	return vs[0], nil
}

// patient returns the patient parameter: a patient ID, or Patient/{id}.
func (f *fhirQuery) patient() (string, error) {
	v, err := f.get("patient")
	return strings.TrimPrefix(v, "Patient/"), err
}

// dates parses every value of a date parameter.
func (f *fhirQuery) dates(name string) (fhir.DateParams, error) {
	vs := slices.DeleteFunc(slices.Clone(f.q[name]), func(v string) bool { return v == "" })
	ps, err := fhir.ParseDates(vs)
	if err != nil {
		return nil, badRequest(strings.TrimPrefix(err.Error(), fhir.ErrInvalidSearch.Error()+": ") + ".")
	}
	for _, v := range vs {
		f.honoured.Add(name, v)
	}
	return ps, nil
}

// count reads _count: 1 to consent.MaxPageSize (more is served as the
// maximum, and the self link says so).
func (f *fhirQuery) count() (int, error) {
	v, err := f.get("_count")
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest("_count must be a whole number from 1 to " + strconv.Itoa(consent.MaxPageSize) + ".")
	}
	n = min(n, consent.MaxPageSize)
	f.honoured.Set("_count", strconv.Itoa(n))
	return n, nil
}

// page reads _count and the cursor of a next link.
func (f *fhirQuery) page() (consent.Page, error) {
	n, err := f.count()
	if err != nil {
		return consent.Page{}, err
	}
	cur, err := f.get("cursor")
	return consent.Page{Cursor: cur, Limit: n}, err
}

// finish checks, under Prefer: handling=strict, that every parameter was
// honoured, and records _format.
func (f *fhirQuery) finish() error {
	if _, err := f.get("_format"); err != nil {
		return err
	}
	if !strings.Contains(strings.ReplaceAll(f.c.GetHeader("Prefer"), " ", ""), "handling=strict") {
		return nil
	}
	for name := range f.q {
		if _, ok := f.honoured[name]; !ok && f.q.Get(name) != "" {
			return badRequest("Search parameter " + strconv.Quote(name) + " is not supported here.")
		}
	}
	return nil
}

// links returns the searchset's self link (the honoured parameters) and,
// when there is a next page, its link.
func (f *fhirQuery) links(s *Server, next string) fhir.Links {
	self := url.URL{Path: f.c.Request.URL.Path, RawQuery: f.honoured.Encode()}
	l := fhir.Links{Base: s.fhirURL(""), Self: s.cfg.BaseURL + self.String()}
	if next != "" {
		q := url.Values{}
		for k, v := range f.honoured {
			q[k] = v
		}
		q.Set("cursor", next)
		u := url.URL{Path: f.c.Request.URL.Path, RawQuery: q.Encode()}
		l.Next = s.cfg.BaseURL + u.String()
	}
	return l
}

// consentStatuses is the FHIR Consent.status vocabulary; healthgw's
// grants are active or inactive (revoked or expired).
var consentStatuses = []string{"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}

// fhirConsentSearch serves GET /fhir/Consent: the grants of
// GET /v1/consents (with patient: that patient's, as far as the caller may
// see them), filtered by status and date (Consent.dateTime, when the grant
// was made), as a searchset Bundle. Filters apply to each page, so a page
// may hold fewer than _count entries; the next link goes on.
func (s *Server) fhirConsentSearch(c *gin.Context) {
	f := newFHIRQuery(c)
	pg, err := f.page()
	if err != nil {
		s.fail(c, err)
		return
	}
	patient, err := f.patient()
	if err != nil {
		s.fail(c, err)
		return
	}
	status, err := f.get("status")
	if err != nil {
		s.fail(c, err)
		return
	}
	var statuses []string
	if status != "" {
		for _, st := range strings.Split(status, ",") {
			if !slices.Contains(consentStatuses, st) {
				s.fail(c, badRequest(fmt.Sprintf("status %q is not one of %s.", st, strings.Join(consentStatuses, ", "))))
				return
			}
			statuses = append(statuses, st)
		}
	}
	dates, err := f.dates("date")
	if err == nil {
		err = f.finish()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var (
		grants []consent.Grant
		next   string
	)
	if patient != "" {
		grants, next, err = s.consent.Queries.PatientConsents(c.Request.Context(), principal(c), patient, pg)
	} else {
		grants, next, err = s.consent.Queries.Consents(c.Request.Context(), principal(c), pg)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if grants, next, err = pageGrants(grants, next, pg); err != nil {
		s.fail(c, err)
		return
	}
	now := s.nowUTC()
	grants = keep(grants, func(g consent.Grant) bool {
		return (statuses == nil || slices.Contains(statuses, fhir.NewConsent(g, now).Status)) && dates.Matches(g.GrantedAt)
	})
	renderFHIR(c, fhir.ConsentBundle(grants, now, f.links(s, next)))
}

// pageGrants applies the page to grants, newest first: a hospital's
// search by patient comes back whole (access.Queries.PatientConsents), a
// patient's already paged by the store (then this changes nothing). The
// cursor is the store's: continue below a ledger index.
func pageGrants(grants []consent.Grant, next string, pg consent.Page) ([]consent.Grant, string, error) {
	before, ok, err := pg.Before()
	if err != nil {
		return nil, "", err
	}
	out := keep(grants, func(g consent.Grant) bool { return !ok || g.GrantedIndex < before })
	slices.SortStableFunc(out, func(a, b consent.Grant) int { return cmp.Compare(b.GrantedIndex, a.GrantedIndex) })
	if n := pg.Size(); len(out) > n {
		out = out[:n]
		next = consent.EncodeCursor(out[n-1].GrantedIndex)
	}
	return out, next, nil
}

// fhirConsentRead serves GET /fhir/Consent/{id}: the grant of
// GET /v1/consents/{id}, 404 when the caller may not see it.
func (s *Server) fhirConsentRead(c *gin.Context) {
	rest, ok := strings.CutPrefix(c.Param("id"), "cns-")
	if !ok || rest == "" || strings.ContainsAny(rest, "-_") {
		s.fail(c, errNotFound)
		return
	}
	g, err := s.consent.Queries.Consent(c.Request.Context(), principal(c), "cns_"+rest)
	if err != nil {
		s.fail(c, err)
		return
	}
	renderFHIR(c, fhir.NewConsent(g, s.nowUTC()))
}

// fhirAuditEventSearch serves GET /fhir/AuditEvent: a patient's own access
// log, or for regulators the audit list (the filters of
// /v1/audit/events), filtered by date (AuditEvent.recorded), as IHE
// BALP AuditEvents in a searchset Bundle.
func (s *Server) fhirAuditEventSearch(c *gin.Context) {
	p := principal(c)
	f := newFHIRQuery(c)
	pg, err := f.page()
	if err != nil {
		s.fail(c, err)
		return
	}
	patient, err := f.patient()
	if err != nil {
		s.fail(c, err)
		return
	}
	dates, err := f.dates("date")
	if err != nil {
		s.fail(c, err)
		return
	}
	var af consent.AuditFilter
	if !p.IsPatient() {
		for _, name := range []string{"org", "decision", "break_glass", "since", "until"} {
			if _, err := f.get(name); err != nil {
				s.fail(c, err)
				return
			}
		}
		if af, err = auditFilter(c); err != nil {
			s.fail(c, err)
			return
		}
		af.Patient = patient
	}
	if err := f.finish(); err != nil {
		s.fail(c, err)
		return
	}
	var page access.EventPage
	if p.IsPatient() {
		page, err = s.consent.Queries.AccessLogPage(c.Request.Context(), p, patient, pg)
	} else {
		page, err = s.consent.Queries.AuditEventsPage(c.Request.Context(), p, af, pg)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	events := keep(page.Events, func(e consent.AccessEvent) bool { return dates.Matches(e.Time) })
	l := f.links(s, page.Next)
	l.AsOf = page.AsOf
	renderFHIR(c, fhir.AuditEventBundle(events, l))
}

// fhirAuditEventRead serves GET /fhir/AuditEvent/ae-{ledger index}: one
// access event the caller may see (a patient's own, anything for a
// regulator), 404 otherwise.
func (s *Server) fhirAuditEventRead(c *gin.Context) {
	rest, ok := strings.CutPrefix(c.Param("id"), "ae-")
	idx, err := strconv.ParseUint(rest, 10, 64)
	if !ok || err != nil || strconv.FormatUint(idx, 10) != rest {
		s.fail(c, errNotFound)
		return
	}
	e, err := s.consent.Queries.AccessEvent(c.Request.Context(), principal(c), idx)
	if err != nil {
		s.fail(c, err)
		return
	}
	renderFHIR(c, fhir.NewAuditEvent(e, s.fhirURL("")))
}

// fhirResourceType returns the record resource type of the path, or fails
// with a 404 for a type this server does not serve.
func (s *Server) fhirResourceType(c *gin.Context) (string, bool) {
	rt := c.Param("type")
	if !slices.Contains(records.ResourceTypes(), rt) {
		s.fail(c, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "This server does not serve resource type " + strconv.Quote(rt) + "; see /fhir/metadata."})
		return "", false
	}
	return rt, true
}

// fhirRead is the gated read of one record of type rt for the request: the
// same access.Service call as GET /v1/records/{id} (purpose from
// ?purpose=, break-glass from X-Break-Glass-Reason), with the resource
// type asked for.
func (s *Server) fhirRead(c *gin.Context, rt, id string, purpose purposeQuery) (access.Result, error) {
	return s.gate.Read(c.Request.Context(), access.ReadRequest{
		Caller:          caller(c),
		RecordID:        id,
		Purpose:         consent.Purpose(purpose),
		Justification:   c.GetHeader(HeaderBreakGlass),
		RequestID:       requestID(c),
		ClientRequestID: clientRequestID(c),
		ResourceType:    rt,
	})
}

// fhirResource is a record's content as its FHIR resource, with the
// record ID as its id so that its URL resolves.
func fhirResource(res access.Result) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(res.Content, &m); err != nil {
		return nil, fmt.Errorf("record %s: stored FHIR content: %w", res.Record.ID, err)
	}
	id, err := json.Marshal(res.Record.ID)
	if err != nil {
		return nil, err
	}
	m["id"] = id
	return json.Marshal(m)
}

// fhirRecordRead serves GET /fhir/{ResourceType}/{id}: decided and logged
// exactly like GET /v1/records/{id}; a denied read, a missing record and
// a record of another type are the same 404.
func (s *Server) fhirRecordRead(c *gin.Context) {
	rt, ok := s.fhirResourceType(c)
	if !ok {
		return
	}
	purpose, err := purposeOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.fhirRead(c, rt, c.Param("id"), purpose)
	if err != nil {
		s.fail(c, err)
		return
	}
	body, err := fhirResource(res)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, fhir.ContentType, body)
}

// recordCursor is the position after a record in a listing ordered by
// (creation time, ID).
func recordCursor(r records.Record) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(r.CreatedAt.UnixNano(), 10) + "." + r.ID))
}

func parseRecordCursor(s string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		ns, id, ok := strings.Cut(string(b), ".")
		if n, err := strconv.ParseInt(ns, 10, 64); ok && err == nil {
			return n, id, nil
		}
	}
	return 0, "", badRequest("Invalid cursor.")
}

func compareRecords(a, b records.Record) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

// fhirRecordSearch serves GET /fhir/{ResourceType}?patient=: a searchset of
// the patient's records of that type that the caller may read. The
// listing is access.Service.Readable (the metadata of
// GET /v1/patients/{patient}/records: not logged); each entry on the page
// is then read through access.Service.Read, exactly like
// GET /fhir/{ResourceType}/{id}, so every resource returned is decided
// and logged. A record that a read no longer permits (revoked in between)
// is left out. Parameters: patient (required), purpose, _lastUpdated
// (when the record was stored, with prefixes), _count, cursor.
func (s *Server) fhirRecordSearch(c *gin.Context) {
	rt, ok := s.fhirResourceType(c)
	if !ok {
		return
	}
	f := newFHIRQuery(c)
	n, err := f.count()
	if err != nil {
		s.fail(c, err)
		return
	}
	if n == 0 {
		n = consent.DefaultPageSize
	}
	cur, err := f.get("cursor")
	if err != nil {
		s.fail(c, err)
		return
	}
	patient, err := f.patient()
	if err == nil && patient == "" {
		err = badRequest("patient is required: " + rt + "?patient={patient ID}.")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := f.get("purpose"); err != nil {
		s.fail(c, err)
		return
	}
	purpose, err := purposeOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	updated, err := f.dates("_lastUpdated")
	if err == nil {
		err = f.finish()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var after *records.Record
	if cur != "" {
		ns, id, err := parseRecordCursor(cur)
		if err != nil {
			s.fail(c, err)
			return
		}
		after = &records.Record{ID: id, CreatedAt: time.Unix(0, ns)}
	}
	visible, err := s.gate.Readable(c.Request.Context(), access.ListRequest{Caller: caller(c), Patient: patient, Purpose: consent.Purpose(purpose)})
	if err != nil {
		s.fail(c, err)
		return
	}
	visible = keep(visible, func(r records.Record) bool {
		return r.ResourceType == rt && updated.Matches(r.CreatedAt) && (after == nil || compareRecords(r, *after) > 0)
	})
	slices.SortFunc(visible, compareRecords)
	next := ""
	if len(visible) > n {
		visible = visible[:n]
		next = recordCursor(visible[n-1])
	}
	l := f.links(s, next)
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "searchset", Link: []fhir.BundleLink{{Relation: "self", URL: l.Self}}}
	if l.Next != "" {
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: l.Next})
	}
	for _, r := range visible {
		res, err := s.fhirRead(c, rt, r.ID, purpose)
		if errors.Is(err, access.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		body, err := fhirResource(res)
		if err != nil {
			s.fail(c, err)
			return
		}
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullURL:  s.fhirURL("/" + rt + "/" + r.ID),
			Resource: body,
			Search:   &fhir.BundleSearch{Mode: "match"},
		})
	}
	c.Header("Cache-Control", "no-store")
	renderFHIR(c, b)
}

// fhirMetadata serves GET /fhir/metadata: the CapabilityStatement of what
// this server mounts, exactly.
func (s *Server) fhirMetadata(c *gin.Context) {
	uris := fhir.OAuthURIs{Token: s.cfg.BaseURL + auth.TokenPath}
	if s.tokens != nil {
		conf := s.tokens.SMARTConfiguration()
		str := func(k string) string { v, _ := conf[k].(string); return v }
		uris = fhir.OAuthURIs{Token: str("token_endpoint"), Introspect: str("introspection_endpoint"), Revoke: str("revocation_endpoint")}
	}
	read := []fhir.CapabilityInteraction{{Code: "read"}, {Code: "search-type"}}
	param := func(name, typ, doc string) fhir.CapabilitySearchParam {
		return fhir.CapabilitySearchParam{Name: name, Type: typ, Documentation: doc}
	}
	var resources []fhir.CapabilityResource
	if s.consent.Queries != nil {
		resources = append(resources,
			fhir.CapabilityResource{
				Type:          "Consent",
				Documentation: "A patient's consent grants (a patient: their own; a hospital with system/consents.read: those naming it). _count and cursor page.",
				Interaction:   read,
				SearchParam: []fhir.CapabilitySearchParam{
					param("patient", "reference", "The patient's ID (or Patient/{id})."),
					param("status", "token", "active or inactive (revoked or expired); comma-separated for either."),
					param("date", "date", "When the grant was made (Consent.dateTime), with prefixes eq, ne, gt, lt, ge, le, sa, eb; repeat to combine."),
				},
			},
			fhir.CapabilityResource{
				Type:          "AuditEvent",
				Documentation: "Access decisions as IHE BALP AuditEvents (a patient: about them; a regulator with audit.read: all, with the filters org, decision, break_glass, since, until). _count and cursor page.",
				Interaction:   read,
				SearchParam: []fhir.CapabilitySearchParam{
					param("patient", "reference", "The patient's ID."),
					param("date", "date", "When the decision was recorded, with prefixes eq, ne, gt, lt, ge, le, sa, eb; repeat to combine."),
				},
			})
	}
	if s.gate != nil {
		for _, rt := range records.ResourceTypes() {
			resources = append(resources, fhir.CapabilityResource{
				Type:          rt,
				Documentation: "Records held by the consortium's hospitals, read under the patient's consent: every read is decided and logged on the ledger; one the caller may not read is not found. For hospitals with system/records.read or system/" + rt + ".rs.",
				Interaction:   read,
				SearchParam: []fhir.CapabilitySearchParam{
					param("patient", "reference", "Required: the patient's ID."),
					param("purpose", "token", "The purpose of use, an HL7 v3 ActReason code (TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH), here or in the X-Purpose-Of-Use header (also for reads by ID); break-glass needs the X-Break-Glass-Reason header."),
					param("_lastUpdated", "date", "When the record was stored, with prefixes."),
				},
			})
		}
	}
	st := fhir.NewCapabilityStatement(s.fhirURL(""), "", s.nowUTC().Format(time.RFC3339), uris, resources)
	c.Header("Cache-Control", "public, max-age=300")
	renderFHIR(c, st)
}
