package api

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

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
// GET /v1/consents (with patient: that patient's, as far as the caller
// may see them), as a FHIR R4 searchset Bundle.
func (s *Server) fhirConsent(c *gin.Context) {
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var (
		grants []consent.Grant
		next   string
	)
	if patient := c.Query("patient"); patient != "" {
		grants, next, err = s.consent.Queries.PatientConsents(c.Request.Context(), principal(c), patient, pg)
	} else {
		grants, next, err = s.consent.Queries.Consents(c.Request.Context(), principal(c), pg)
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
	if p.IsPatient() {
		events, next, err = s.consent.Queries.AccessLog(c.Request.Context(), p, c.Query("patient"), pg)
	} else {
		var f consent.AuditFilter
		if f, err = auditFilter(c); err == nil {
			events, next, err = s.consent.Queries.AuditEvents(c.Request.Context(), p, f, pg)
		}
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	renderFHIR(c, fhir.AuditEventBundle(events, s.fhirLinks(c, next)))
}
