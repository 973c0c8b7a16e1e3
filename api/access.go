package api

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// HeaderBreakGlass carries a break-glass justification (purpose ETREAT).
// It is a header, not a query parameter, so that it stays out of URLs and
// proxy logs; the ledger keeps only its SHA-256.
const HeaderBreakGlass = "X-Break-Glass-Reason"

// Syncer brings the projections up to date with the log (ledger.Follower).
type Syncer interface {
	Sync(ctx context.Context, size uint64) error
}

// accessControl decides and logs reads of records: every decision, permit
// or deny, is appended to the ledger and durable before a byte of the
// record moves.
//
// Decisions and consent changes of one patient are linearised by a
// striped read-write lock: a read holds its patient's stripe shared from
// loading the grants until its access entry is durable; a grant or
// revocation holds it exclusively until its entry is durable and
// projected. So once a revocation is acknowledged, no read decided under
// the old grant can still log a permit after it.
type accessControl struct {
	s      *Server
	grants GrantSource
	log    ledger.Appender
	sync   Syncer
	policy consent.Policy
	locks  patientLocks
}

// patientLocks is a fixed set of read-write locks, one stripe per patient
// pseudonym hash.
type patientLocks [256]sync.RWMutex

func (l *patientLocks) stripe(patient string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(patient))
	return &l[h.Sum32()%uint32(len(l))]
}

// GrantSource loads the grants that can decide a request.
type GrantSource interface {
	GrantsFor(ctx context.Context, patient, org string, kind auth.Kind) ([]consent.Grant, error)
}

func (a *accessControl) request(c *gin.Context, r records.Record, purpose string) consent.Request {
	p := principal(c)
	return consent.Request{
		Requester:     p.Org,
		RequesterKind: p.Kind,
		Action:        consent.ActionRead,
		RecordID:      r.ID,
		Patient:       r.Patient,
		Category:      string(r.Category),
		ResourceType:  r.ResourceType,
		Purpose:       consent.Purpose(purpose),
		Justification: c.GetHeader(HeaderBreakGlass),
	}
}

// decide returns the decision for the caller reading r. The holder always
// may.
func (a *accessControl) decide(ctx context.Context, p Principal, req consent.Request, holder string) (consent.Decision, error) {
	if holder == p.Org {
		return consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitHolder}, nil
	}
	grants, err := a.grants.GrantsFor(ctx, req.Patient, p.Org, p.Kind)
	if err != nil {
		return consent.Decision{}, fmt.Errorf("load grants: %w", err)
	}
	return consent.Decide(req, grants, a.s.now(), a.policy), nil
}

// authorize decides, appends access.decided and waits for it to be
// durable. A deny is errNotFound, exactly like a record that does not
// exist.
func (a *accessControl) authorize(c *gin.Context, r records.Record, purpose string) error {
	ctx := c.Request.Context()
	req := a.request(c, r, purpose)
	mu := a.locks.stripe(r.Patient)
	mu.RLock()
	defer mu.RUnlock()
	d, err := a.decide(ctx, principal(c), req, r.Holder)
	if err != nil {
		return err
	}
	e, err := ledger.NewEntry(req.Requester, d.LedgerBody(req, requestID(c)))
	if err != nil {
		return fmt.Errorf("access entry: %w", err)
	}
	if _, err := a.log.Append(ctx, e); err != nil {
		// Nothing is served without a durable log entry.
		return fmt.Errorf("log access decision: %w", err)
	}
	// The access-event projection is not updated here, on the hot path:
	// the queries that show events catch it up first (Server.catchUp).
	if !d.Permitted() {
		return errNotFound
	}
	return nil
}

// readable returns the records of one patient that the caller may read,
// for listings: its own, and those a grant permits. Listings show metadata
// only and are not logged per record; break-glass does not apply.
func (a *accessControl) readable(c *gin.Context, recs []records.Record, purpose string) ([]records.Record, error) {
	p := principal(c)
	var (
		grants []consent.Grant
		loaded bool
		out    []records.Record
	)
	for _, r := range recs {
		if r.Holder == p.Org {
			out = append(out, r)
			continue
		}
		if !loaded { // every record here has the same patient
			var err error
			if grants, err = a.grants.GrantsFor(c.Request.Context(), r.Patient, p.Org, p.Kind); err != nil {
				return nil, fmt.Errorf("load grants: %w", err)
			}
			loaded = true
		}
		req := a.request(c, r, purpose)
		req.Justification = ""
		if consent.Decide(req, grants, a.s.now(), a.policy).Permitted() {
			out = append(out, r)
		}
	}
	return out, nil
}

// catchUp applies every durable entry to the projections, so that a query
// sees every decision acknowledged before it.
func (s *Server) catchUp(ctx context.Context) error {
	n, err := s.ledger.Size(ctx)
	if err != nil {
		return err
	}
	return s.projections.Sync(ctx, n)
}

// validPurpose checks a purpose query parameter ("" is allowed).
func validPurpose(p string) error {
	if p != "" && !consent.Purpose(p).Valid() {
		return badRequest(fmt.Sprintf("purpose %q is not one of %s.", p, purposeList()))
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

// nowUTC is the server's clock in UTC.
func (s *Server) nowUTC() time.Time { return s.now().UTC() }
