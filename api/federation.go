package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/federation"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/registry"
)

// Federation is the reader's side of federated reads (federation.Service):
// the consortium-wide locator and reads at the holder's gateway.
type Federation interface {
	List(ctx context.Context, req access.ListRequest, pg consent.Page) (federation.Listing, error)
	Read(ctx context.Context, req federation.ReadRequest) (federation.Result, error)
}

// FederationHolder is the holder's side (federation.Holder): it checks
// other gateways' request tokens and seals its answers to them.
type FederationHolder interface {
	Authorize(ctx context.Context, token, method, target string) (federation.Claims, access.Caller, error)
	SealAnswer(c federation.Claims, body []byte) ([]byte, error)
	HomedHere(org string) bool
}

var (
	_ Federation       = (*federation.Service)(nil)
	_ FederationHolder = (*federation.Holder)(nil)
)

const (
	ctxFedClaims = "healthgw.federation.claims"
	ctxFedCaller = "healthgw.federation.caller"
)

// MountFederation mounts federated reads (call after MountRecords):
//
//   - GET /v1/patients/{p}/records lists the records the caller may
//     read across the consortium (f.List: answered by the custodian's
//     gateway from the ledger and the consent state), each with its
//     holder's endpoint and the path to read it here;
//   - GET /v1/holders/{holder}/records/{id} reads a record held by holder
//     through this gateway (f.Read): at the holder's home gateway, or
//     here if that is this one;
//   - GET /v1/federation/records/{id} (the holder's side) and
//     GET /v1/federation/patients/{p}/records (the custodian's side) are
//     for other members' gateways only (a federation request token, not
//     an org token), answered sealed to the requesting gateway.
func (s *Server) MountFederation(f Federation, h FederationHolder) {
	s.fed, s.fedHolder = f, h
	g := s.engine.Group("/v1", s.authenticate)
	g.GET("/holders/:holder/records/:id", s.requireRecordReader, s.getHeldRecord)
	fg := s.engine.Group("/v1/federation", s.authenticateGateway)
	fg.GET("/records/:id", s.federatedRecord)
	fg.GET("/patients/:patient/records", s.federatedListing)
}

// getHeldRecord is a read of a record held by an org, possibly at another
// member: the same answers as GET /v1/records/{id} (a deny is a 404), and
// 502 or 503 when the holder's gateway cannot be asked.
func (s *Server) getHeldRecord(c *gin.Context) {
	ctx := c.Request.Context()
	holder := c.Param("holder")
	sealed := wantsJOSE(c)
	encKey, err := s.callerEncryptionKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	purpose, err := purposeOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !registry.IDPattern.MatchString(holder) {
		s.fail(c, records.ErrNotFound) // no org has such an ID
		return
	}
	res, err := s.fed.Read(ctx, federation.ReadRequest{
		ReadRequest: access.ReadRequest{
			Caller:          caller(c),
			RecordID:        c.Param("id"),
			Purpose:         consent.Purpose(purpose),
			Justification:   c.GetHeader(HeaderBreakGlass),
			RequestID:       requestID(c),
			ClientRequestID: clientRequestID(c),
		},
		Holder:    holder,
		SealToOrg: sealed,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	if res.Sealed != nil {
		// Sealed by the holder to the caller's key: passed through.
		c.Data(http.StatusOK, records.JOSEContentType, res.Sealed)
		return
	}
	s.renderRecord(c, res.Record, res.Content, encKey)
}

// renderRecord writes a permitted read: sealed to encKey if set, else the
// metadata and the content (FHIR inline, anything else base64).
func (s *Server) renderRecord(c *gin.Context, rec records.Record, content []byte, encKey jwk.Key) {
	if encKey != nil {
		set := jwk.NewSet()
		if err := set.AddKey(encKey); err != nil {
			s.fail(c, err)
			return
		}
		jwe, err := records.Seal(content, rec.ContentType, set)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Data(http.StatusOK, records.JOSEContentType, jwe)
		return
	}
	var out json.RawMessage
	if records.IsFHIR(rec.ContentType) {
		out = content
	} else {
		out, _ = json.Marshal(content) // []byte: a base64 JSON string
	}
	c.JSON(http.StatusOK, recordResponse{Record: metaOf(rec, ""), Content: out})
}

// federatedList is the locator's answer (f.List).
func (s *Server) federatedList(c *gin.Context, purpose purposeQuery, pg consent.Page) {
	patient := c.Param("patient")
	l, err := s.fed.List(c.Request.Context(), access.ListRequest{Caller: caller(c), Patient: patient, Purpose: consent.Purpose(purpose)}, pg)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := recordList{Records: []recordMeta{}, NextCursor: l.Next}
	for _, r := range l.Records {
		m := metaOf(r.Record, patient)
		m.HolderEndpoint = r.Home.BaseURL
		if r.Local {
			m.ReadPath = "/v1/records/" + url.PathEscape(r.Record.ID)
		} else {
			m.ReadPath = "/v1/holders/" + url.PathEscape(r.Record.Holder) + "/records/" + url.PathEscape(r.Record.ID)
		}
		out.Records = append(out.Records, m)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// authenticateGateway admits another member's gateway acting for one of
// its orgs (a federation request token bound to this request); anything
// else is a 401.
func (s *Server) authenticateGateway(c *gin.Context) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="healthgw-federation"`)
		s.fail(c, errUnauthorized)
		return
	}
	claims, who, err := s.fedHolder.Authorize(c.Request.Context(), token, c.Request.Method, federation.CanonicalTarget(c.Request.URL))
	if errors.Is(err, federation.ErrInvalidToken) {
		c.Header("WWW-Authenticate", `Bearer realm="healthgw-federation", error="invalid_token"`)
		s.fail(c, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "Missing or invalid credentials.", Err: err})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(ctxFedClaims, claims)
	c.Set(ctxFedCaller, who)
	c.Next()
}

func fedOf(c *gin.Context) (federation.Claims, access.Caller) {
	cl, _ := c.Get(ctxFedClaims)
	who, _ := c.Get(ctxFedCaller)
	claims, _ := cl.(federation.Claims)
	caller, _ := who.(access.Caller)
	return claims, caller
}

// federatedRecord is the holder's side of a federated read: the same
// gated read as GET /v1/records/{id}, for the org the requesting gateway
// acts for (decided and logged as access.decided for it), answered
// sealed: to the requesting gateway (signed by this one, bound to the
// request token), or to the org's own encryption key.
func (s *Server) federatedRecord(c *gin.Context) {
	ctx := c.Request.Context()
	claims, who := fedOf(c)
	var encKey jwk.Key
	if claims.Seal == federation.SealOrg {
		k, ok, err := s.encKeys.EncryptionKey(ctx, claims.Org)
		if err != nil {
			s.fail(c, err)
			return
		}
		if !ok {
			s.fail(c, records.ErrNoEncryptionKey)
			return
		}
		encKey = k
	}
	purpose, err := purposeOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	holder := c.Query("holder")
	if !s.fedHolder.HomedHere(holder) {
		// The requesting gateway's registry names another home: no org
		// here to decide under.
		s.fail(c, records.ErrNotFound)
		return
	}
	res, err := s.gate.Read(ctx, access.ReadRequest{
		Holder:          holder,
		Caller:          who,
		RecordID:        c.Param("id"),
		Purpose:         consent.Purpose(purpose),
		Justification:   c.GetHeader(HeaderBreakGlass),
		RequestID:       requestID(c),
		ClientRequestID: clientRequestID(c), // the requesting gateway's request ID
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	if encKey != nil {
		s.renderRecord(c, res.Record, res.Content, encKey)
		return
	}
	body, err := json.Marshal(client.FederatedRecord{Record: metaOf(res.Record, ""), Content: res.Content})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.sealAnswer(c, claims, body)
}

// federatedListing is the other side of the locator: the listing this
// gateway can make for the org the requesting gateway acts for (Locate:
// at the custodian, the records of every holder).
func (s *Server) federatedListing(c *gin.Context) {
	claims, who := fedOf(c)
	purpose, err := purposeOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	pg, err := page(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.localListing(c, who, purpose, pg, s.gate.Locate)
	if err != nil {
		s.fail(c, err)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	s.sealAnswer(c, claims, body)
}

func (s *Server) sealAnswer(c *gin.Context, claims federation.Claims, body []byte) {
	sealed, err := s.fedHolder.SealAnswer(claims, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, records.JOSEContentType, sealed)
}
