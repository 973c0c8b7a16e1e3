package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

// HeaderBreakGlass carries a break-glass justification (purpose ETREAT).
// It is a header, not a query parameter, so that it stays out of URLs and
// proxy logs; the ledger keeps only its SHA-256.
const HeaderBreakGlass = "X-Break-Glass-Reason"

// HeaderPurpose carries the purpose of use of a record read or listing,
// as an alternative to the purpose query parameter, for clients (FHIR
// libraries) that cannot add a query to a read by ID or to a fullUrl.
// Given both, they must agree.
const HeaderPurpose = "X-Purpose-Of-Use"

// purposeOf returns the request's purpose of use: the purpose query
// parameter or the HeaderPurpose header, validated.
func purposeOf(c *gin.Context) (purposeQuery, error) {
	q, h := c.Query("purpose"), strings.TrimSpace(c.GetHeader(HeaderPurpose))
	if q != "" && h != "" && q != h {
		return "", badRequest("The purpose query parameter and the " + HeaderPurpose + " header differ.")
	}
	p := purposeQuery(q)
	if p == "" {
		p = purposeQuery(h)
	}
	return p, p.Validate()
}

// Vault is the record vault as the record routes use it (records.Vault);
// reads go through the Gate.
type Vault interface {
	Put(ctx context.Context, r records.PutRequest) (records.Record, error)
	Shred(ctx context.Context, holder, id string) (uint64, error)
	ShredRetry(ctx context.Context, holder, id string) (uint64, error)
	MaxSize() int64
	// PutStream is Put of content read as it arrives (POST
	// /v1/records/upload), up to MaxStreamSize bytes.
	PutStream(ctx context.Context, r records.PutRequest, content io.Reader) (records.Record, error)
	MaxStreamSize() int64
}

// Gate is the consent-gated read and listing (access.Service).
type Gate interface {
	Read(ctx context.Context, req access.ReadRequest) (access.Result, error)
	// ReadStream is Read with the content as a reader (Result.Body,
	// which the caller closes).
	ReadStream(ctx context.Context, req access.ReadRequest) (access.Result, error)
	Readable(ctx context.Context, req access.ListRequest) ([]records.Record, error)
	// Locate is Readable across the holders whose registrations this
	// gateway opened (another gateway's locator asks it).
	Locate(ctx context.Context, req access.ListRequest) ([]records.Record, error)
}

var (
	_ Vault = (*records.Vault)(nil)
	_ Gate  = (*access.Service)(nil)
)

// EncryptionKeys finds an organisation's registered encryption key (use
// "enc") for sealed responses.
type EncryptionKeys interface {
	EncryptionKey(ctx context.Context, orgID string) (jwk.Key, bool, error)
}

// MountRecords mounts the record routes: uploads and shredding through
// the vault, reads and listings through the gate.
func (s *Server) MountRecords(v Vault, gate Gate, keys EncryptionKeys) {
	s.vault, s.gate, s.encKeys = v, gate, keys
	g := s.engine.Group("/v1", s.authenticate)
	g.POST("/records", s.requireOrg(auth.ScopeRecordsWrite, auth.KindHospital), s.limitBody(records.MaxBodySize(v.MaxSize())),
		s.idempotent("POST /v1/records", uuid.NewString, func(_ *gin.Context, id string) string { return "/v1/records/" + id }), s.postRecord)
	// A streamed upload: the body is the content, never held whole; its
	// key's fingerprint covers the headers and the Content-Digest.
	g.POST("/records/upload", s.requireOrg(auth.ScopeRecordsWrite, auth.KindHospital), s.limitBody(v.MaxStreamSize()), s.uploadHeaders,
		s.keyed("POST /v1/records/upload", uuid.NewString, func(_ *gin.Context, id string) string { return "/v1/records/" + id }, uploadFingerprint, DefaultUploadLease), s.uploadRecord)
	g.GET("/records/:id", s.requireRecordReader, s.getRecord)
	g.GET("/records/:id/content", s.requireRecordReader, s.getRecordContent)
	g.DELETE("/records/:id", s.requireOrg(auth.ScopeRecordsWrite, auth.KindHospital), s.limitBody(s.cfg.MaxJSONBody),
		s.idempotent("DELETE /v1/records/{id}", nil, func(c *gin.Context, _ string) string { return "/v1/records/" + c.Param("id") }), s.deleteRecord)
	g.GET("/patients/:patient/records", s.requireRecordReader, s.listPatientRecords)
	s.mountFHIRRecords()
}

// purposeQuery is the purpose query parameter of record reads and
// listings ("" is allowed: no grant covers it).
type purposeQuery string

// Validate checks the purpose against the closed vocabulary.
func (p purposeQuery) Validate() error {
	if p != "" && !consent.Purpose(p).Valid() {
		return badRequest(fmt.Sprintf("purpose %q is not one of %s.", string(p), purposeList()))
	}
	return nil
}

func purposeList() string {
	var names []string
	for _, p := range consent.Purposes {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

// caller is the gate's view of the request's organisation, with the
// token's scopes (which record resource types it may read).
func caller(c *gin.Context) access.Caller {
	p := principal(c)
	return access.Caller{Org: p.Org, Kind: p.Kind, Scopes: p.Scopes}
}

// recordRequest is the body of POST /v1/records.
type recordRequest client.RecordUpload

// Validate checks the fields that need no vault to check.
func (r *recordRequest) Validate() error {
	switch {
	case r.Patient == "":
		return badRequest("patient is required.")
	case r.Category == "":
		return badRequest("category is required.")
	case !records.ValidCategory(r.Category):
		return badRequest(fmt.Sprintf("category %q is not one of the record categories.", r.Category))
	case r.ContentType == "":
		return badRequest("content_type is required.")
	case len(r.Content) == 0 || string(r.Content) == "null":
		return badRequest("content is required.")
	}
	return nil
}

// recordCreated is the 201 body of POST /v1/records.
type recordCreated = client.RecordCreated

func (s *Server) postRecord(c *gin.Context) {
	var req recordRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	content, err := records.ParseContent(req.ContentType, req.Content)
	if err != nil {
		s.fail(c, err)
		return
	}
	rec, err := s.vault.Put(c.Request.Context(), records.PutRequest{
		ID:           idemClaim(c).ResourceID, // fixed by the Idempotency-Key: a repeat is the same record
		Holder:       principal(c).Org,
		Patient:      req.Patient,
		Category:     records.Category(req.Category),
		ContentType:  content.ContentType,
		Content:      content.Data,
		ResourceType: firstNonEmpty(req.ResourceType, content.ResourceType),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/records/"+rec.ID)
	c.JSON(http.StatusCreated, recordCreated{ID: rec.ID, Commitment: rec.Commitment, LedgerIndex: rec.LedgerIndex})
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// recordMeta is a record's metadata as the API shows it. It never carries
// the vault's patient pseudonym, which is the same for a patient at every
// hospital and would link the patient across them: Patient is the
// patient ID the caller itself named (a listing), or empty (a read of one
// record by ID).
type recordMeta = client.Record

func metaOf(r records.Record, patient string) recordMeta {
	return recordMeta{
		ID: r.ID, Holder: r.Holder, Patient: patient, Category: string(r.Category),
		ResourceType: r.ResourceType, ContentType: r.ContentType, Size: r.Size,
		Commitment: r.Commitment, LedgerIndex: r.LedgerIndex, CreatedAt: r.CreatedAt.UTC(),
	}
}

// recordResponse is a record with its content: FHIR JSON inline, anything
// else base64.
type recordResponse = client.RecordContent

// wantsJOSE reports whether the Accept header asks for a sealed response.
func wantsJOSE(c *gin.Context) bool {
	for _, part := range strings.Split(c.GetHeader("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "application/jose" {
			return true
		}
	}
	return false
}

// callerEncryptionKey returns the caller org's encryption key when the
// request asks for a JWE answer (Accept: application/jose), else nil. It
// is known before anything is decided or read, so a 406 says nothing
// about the record.
func (s *Server) callerEncryptionKey(c *gin.Context) (jwk.Key, error) {
	if !wantsJOSE(c) {
		return nil, nil
	}
	k, ok, err := s.encKeys.EncryptionKey(c.Request.Context(), principal(c).Org)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, records.ErrNoEncryptionKey
	}
	return k, nil
}

// readRequestOf is the gated read a record read by ID asks for: the
// caller, the record in the path, the purpose (validated), the
// break-glass reason and the request IDs.
func readRequestOf(c *gin.Context) (access.ReadRequest, error) {
	purpose, err := purposeOf(c)
	if err != nil {
		return access.ReadRequest{}, err
	}
	return access.ReadRequest{
		Caller:          caller(c),
		RecordID:        c.Param("id"),
		Purpose:         consent.Purpose(purpose),
		Justification:   c.GetHeader(HeaderBreakGlass),
		RequestID:       requestID(c),
		ClientRequestID: clientRequestID(c),
	}, nil
}

func (s *Server) getRecord(c *gin.Context) {
	ctx := c.Request.Context()
	encKey, err := s.callerEncryptionKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	req, err := readRequestOf(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.gate.Read(ctx, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	s.renderRecord(c, res.Record, res.Content, encKey)
}

// shredResponse is the body of DELETE /v1/records/{id}.
type shredResponse = client.Shredded

func (s *Server) deleteRecord(c *gin.Context) {
	id := c.Param("id")
	shred := s.vault.Shred
	if idemClaim(c).Retry() {
		shred = s.vault.ShredRetry // the earlier attempt may have shredded it
	}
	idx, err := shred(c.Request.Context(), principal(c).Org, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, shredResponse{ID: id, Shredded: true, LedgerIndex: idx})
}

// recordList is a page of record metadata.
type recordList = client.RecordList

func (s *Server) listPatientRecords(c *gin.Context) {
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
	if s.fed != nil {
		s.federatedList(c, purpose, pg) // the consortium-wide locator
		return
	}
	out, err := s.localListing(c, caller(c), purpose, pg, s.gate.Readable)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// localListing is page pg of the records the caller may read: held by
// this gateway (list: access.Service.Readable, a patient's listing here),
// or also held elsewhere whose registrations it opened (the custodian's
// answer to another gateway's locator: access.Service.Locate).
func (s *Server) localListing(c *gin.Context, who access.Caller, purpose purposeQuery, pg consent.Page, list func(context.Context, access.ListRequest) ([]records.Record, error)) (recordList, error) {
	patient := c.Param("patient")
	visible, err := list(c.Request.Context(), access.ListRequest{Caller: who, Patient: patient, Purpose: consent.Purpose(purpose)})
	if err != nil {
		return recordList{}, err
	}
	recs, next, err := access.PageRecords(visible, pg)
	if err != nil {
		return recordList{}, err
	}
	out := recordList{Records: []recordMeta{}, NextCursor: next}
	for _, r := range recs {
		out.Records = append(out.Records, metaOf(r, patient)) // the caller's own name for the patient
	}
	return out, nil
}
