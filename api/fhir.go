package api

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
)

// fhirLinks builds a searchset's self and next links.
func (s *Server) fhirLinks(c *gin.Context, next string) fhir.Links {
	l := fhir.Links{Base: s.cfg.BaseURL + "/fhir", Self: s.cfg.BaseURL + c.Request.URL.RequestURI()}
	if next != "" {
		q := c.Request.URL.Query()
		q.Set("cursor", next)
		u := url.URL{Path: c.Request.URL.Path, RawQuery: q.Encode()}
		l.Next = s.cfg.BaseURL + u.RequestURI()
	}
	return l
}

func renderFHIR(c *gin.Context, v any) {
	c.Header("Content-Type", fhir.ContentType)
	c.JSON(http.StatusOK, v)
}

// fhirConsent serves GET /fhir/Consent?patient=: the same grants as
// GET /v1/consents, as a FHIR R4 searchset Bundle.
func (s *Server) fhirConsent(c *gin.Context) {
	p := principal(c)
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var (
		grants []consent.Grant
		next   string
	)
	patient := c.Query("patient")
	switch {
	case patient != "" && !p.IsPatient() && p.Kind == auth.KindHospital && p.HasScope(auth.ScopeConsentsRead):
		grants, err = s.consent.Store.GrantsFor(c.Request.Context(), s.patientKey(patient), p.Org, p.Kind)
	default:
		grants, next, err = s.listGrants(c, pg)
		if err == nil && patient != "" && p.IsPatient() && s.patientKey(patient) != s.consent.Pseud.Pseudonym(p.Patient) {
			grants, next = nil, "" // a patient sees only their own
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	renderFHIR(c, fhir.ConsentBundle(grants, s.nowUTC(), s.fhirLinks(c, next)))
}

// fhirAuditEvent serves GET /fhir/AuditEvent: a patient's own access log,
// or for regulators the audit list (same filters as /v1/audit/events), as
// IHE BALP-style AuditEvents in a searchset Bundle.
func (s *Server) fhirAuditEvent(c *gin.Context) {
	p := principal(c)
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var (
		events []consent.AccessEvent
		next   string
	)
	switch {
	case p.IsPatient():
		own := s.consent.Pseud.Pseudonym(p.Patient)
		if v := c.Query("patient"); v != "" && s.patientKey(v) != own {
			break
		}
		events, next, err = s.consent.Store.AccessLog(c.Request.Context(), own, pg)
	case p.Kind == auth.KindRegulator && p.HasScope(auth.ScopeAuditRead):
		var f consent.AuditFilter
		if f, err = s.auditFilter(c); err == nil {
			events, next, err = s.consent.Store.AuditEvents(c.Request.Context(), f, pg)
		}
	default:
		err = errForbidden
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	renderFHIR(c, fhir.AuditEventBundle(events, s.fhirLinks(c, next)))
}
