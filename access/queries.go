package access

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// ErrForbidden: the caller may not make this whole class of query (a
// verifier listing consents, a hospital reading the audit log).
var ErrForbidden = errors.New("access: not allowed for this caller")

// QueryStore is the consent projection as the queries read it
// (consentstore.Store).
type QueryStore interface {
	Grants
	ListByPatient(ctx context.Context, patient string, p consent.Page) ([]consent.Grant, string, error)
	ListForGrantee(ctx context.Context, org string, kind auth.Kind, p consent.Page) ([]consent.Grant, string, error)
	AccessLog(ctx context.Context, patient string, p consent.Page) ([]consent.AccessEvent, string, error)
	AuditEvents(ctx context.Context, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error)
}

// Pseudonymizer maps patient IDs to ledger pseudonyms
// (ledger.Pseudonymizer).
type Pseudonymizer interface {
	Pseudonym(patient string) string
}

// QueriesConfig holds the dependencies of Queries; all are required.
type QueriesConfig struct {
	Store QueryStore
	Pseud Pseudonymizer
	// Log and Sync catch the projections up before the access-event
	// queries read them, so that they show every decision acknowledged
	// before.
	Log  ledger.Reader
	Sync Syncer
	// Openings, when set, opens break-glass justification commitments for
	// regulators (justificationstore.Store); without it the audit shows
	// the commitments only.
	Openings Openings
	// Applied, when set, is the access-event projection's cursor
	// (consentstore.Store): a query then waits for at most MaxLag
	// entries to be applied, and answers ErrCatchingUp (a
	// *CatchingUpError) when the projection is further behind the log
	// (it is catching up in the background: ledger.Follower.Run). Without
	// it a query waits for the whole backlog.
	Applied Cursor
	// MaxLag bounds the backlog a query waits for (default
	// DefaultMaxQueryLag).
	MaxLag uint64
}

// DefaultMaxQueryLag is the backlog an access-event query waits for: the
// projection applies tens of thousands of entries a second, so a query
// waits well under a second.
const DefaultMaxQueryLag = 10_000

// Cursor is a projection's position (ledger.Applier's Next).
type Cursor interface {
	Next(ctx context.Context) (uint64, error)
}

// ErrCatchingUp: the access-event projection is further behind the log
// than a query waits for; nothing is answered rather than an incomplete
// log. Retry shortly. *CatchingUpError matches it.
var ErrCatchingUp = errors.New("access: the access log is catching up with the ledger")

// CatchingUpError is ErrCatchingUp with the positions: the projection has
// applied the entries below Applied; the log holds Size.
type CatchingUpError struct {
	Applied, Size uint64
}

func (e *CatchingUpError) Error() string {
	return fmt.Sprintf("%v: applied %d of %d entries", ErrCatchingUp, e.Applied, e.Size)
}

// Is makes a CatchingUpError match ErrCatchingUp.
func (e *CatchingUpError) Is(target error) bool { return target == ErrCatchingUp }

// Openings returns the stored openings of justification commitments
// (hex), each checked against its commitment.
type Openings interface {
	Openings(ctx context.Context, commitments []string) (map[string]ledger.Justification, error)
}

// Queries answers the consent and access-event queries for one viewer at
// a time, showing only what that viewer may see: a patient their own
// grants and access log; a hospital with system/consents.read the grants
// that name it or its kind; a regulator with audit.read every access
// event. It is safe for concurrent use.
type Queries struct{ cfg QueriesConfig }

// NewQueries returns Queries. A nil dependency panics.
func NewQueries(cfg QueriesConfig) *Queries {
	if cfg.Store == nil || cfg.Pseud == nil || cfg.Log == nil || cfg.Sync == nil {
		panic("access.NewQueries: nil dependency")
	}
	if cfg.MaxLag == 0 {
		cfg.MaxLag = DefaultMaxQueryLag
	}
	return &Queries{cfg: cfg}
}

// PatientKey returns the pseudonym of a patient ID, or v itself when it
// already is a pseudonym.
func (q *Queries) PatientKey(v string) string {
	if consent.ValidPseudonym(v) {
		return v
	}
	return q.cfg.Pseud.Pseudonym(v)
}

// own is a patient viewer's pseudonym.
func (q *Queries) own(v auth.Principal) string { return q.cfg.Pseud.Pseudonym(v.Patient) }

func grantReader(v auth.Principal) bool {
	return v.Kind == auth.KindHospital && v.HasScope(auth.ScopeConsentsRead)
}

// Visible reports whether viewer v may see grant g: its patient, or a
// hospital with system/consents.read that it names.
func (q *Queries) Visible(v auth.Principal, g consent.Grant) bool {
	if v.IsPatient() {
		return g.Patient == q.own(v)
	}
	return v.HasScope(auth.ScopeConsentsRead) && g.VisibleTo(v.Org, v.Kind)
}

// Consents lists the grants v may see, newest first: a patient's own, or
// those naming a hospital. Others get ErrForbidden.
func (q *Queries) Consents(ctx context.Context, v auth.Principal, p consent.Page) ([]consent.Grant, string, error) {
	switch {
	case v.IsPatient():
		return q.cfg.Store.ListByPatient(ctx, q.own(v), p)
	case grantReader(v):
		return q.cfg.Store.ListForGrantee(ctx, v.Org, v.Kind, p)
	}
	return nil, "", ErrForbidden
}

// PatientConsents lists the grants of one patient (an ID or a pseudonym)
// that v may see: for a patient, their own (another patient's: none); for
// a hospital, those naming it (all of them, in one page).
func (q *Queries) PatientConsents(ctx context.Context, v auth.Principal, patient string, p consent.Page) ([]consent.Grant, string, error) {
	if grantReader(v) {
		grants, err := q.cfg.Store.GrantsFor(ctx, q.PatientKey(patient), v.Org, v.Kind)
		return grants, "", err
	}
	grants, next, err := q.Consents(ctx, v, p)
	if err == nil && v.IsPatient() && q.PatientKey(patient) != q.own(v) {
		return nil, "", nil // a patient sees only their own
	}
	return grants, next, err
}

// Consent returns grant id if v may see it; consent.ErrNotFound otherwise,
// exactly as for a grant that does not exist.
func (q *Queries) Consent(ctx context.Context, v auth.Principal, id string) (consent.Grant, error) {
	g, err := q.cfg.Store.Grant(ctx, id)
	if err != nil {
		return consent.Grant{}, err
	}
	if !q.Visible(v, g) {
		return consent.Grant{}, consent.ErrNotFound
	}
	return g, nil
}

// CatchUp applies every durable entry to the projections, so that an
// answer read next covers every decision acknowledged before the call.
// With Applied set it waits only for a backlog of at most MaxLag
// entries: beyond, a *CatchingUpError (the background follower gets
// there). It returns the log size the projections now cover (as_of).
// The queries call it; the web pages call it before reading the
// projections themselves.
func (q *Queries) CatchUp(ctx context.Context) (uint64, error) {
	n, err := q.cfg.Log.Size(ctx)
	if err != nil {
		return 0, err
	}
	if q.cfg.Applied != nil {
		applied, err := q.cfg.Applied.Next(ctx)
		if err != nil {
			return 0, fmt.Errorf("access: access-log position: %w", err)
		}
		if applied < n && n-applied > q.cfg.MaxLag {
			return 0, &CatchingUpError{Applied: applied, Size: n}
		}
	}
	return n, q.cfg.Sync.Sync(ctx, n)
}

// EventPage is a page of access events and the position it is complete
// for.
type EventPage struct {
	Events []consent.AccessEvent
	Next   string // the next page's cursor; "" after the last
	// AsOf is the ledger size the query covers: every access decision
	// at an index below AsOf that the query selects is on this page or
	// (below the cursor) a later one.
	AsOf uint64
}

// AccessLog returns a page of the access decisions about patient viewer
// v, newest first, including every decision acknowledged before the call.
// patient, when not "", must name v (an ID or pseudonym); another
// patient's log is empty. A viewer who is not a patient gets
// ErrForbidden.
func (q *Queries) AccessLog(ctx context.Context, v auth.Principal, patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
	pg, err := q.AccessLogPage(ctx, v, patient, p)
	return pg.Events, pg.Next, err
}

// AccessLogPage is AccessLog with the position the page covers.
func (q *Queries) AccessLogPage(ctx context.Context, v auth.Principal, patient string, p consent.Page) (EventPage, error) {
	if !v.IsPatient() {
		return EventPage{}, ErrForbidden
	}
	asOf, err := q.CatchUp(ctx)
	if err != nil {
		return EventPage{}, err
	}
	if patient != "" && q.PatientKey(patient) != q.own(v) {
		return EventPage{AsOf: asOf}, nil
	}
	events, next, err := q.cfg.Store.AccessLog(ctx, q.own(v), p)
	if err != nil {
		return EventPage{}, err
	}
	return EventPage{Events: events, Next: next, AsOf: asOf}, nil
}

// AuditEvents returns a page of access events matching f for a regulator
// with audit.read (f.Patient may be a patient ID or a pseudonym), newest
// first, including every decision acknowledged before the call. Anyone
// else gets ErrForbidden. f is validated (consent.FilterError).
func (q *Queries) AuditEvents(ctx context.Context, v auth.Principal, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
	pg, err := q.AuditEventsPage(ctx, v, f, p)
	return pg.Events, pg.Next, err
}

// AuditEventsPage is AuditEvents with the position the page covers.
func (q *Queries) AuditEventsPage(ctx context.Context, v auth.Principal, f consent.AuditFilter, p consent.Page) (EventPage, error) {
	if v.Kind != auth.KindRegulator || !v.HasScope(auth.ScopeAuditRead) {
		return EventPage{}, ErrForbidden
	}
	if err := f.Validate(); err != nil {
		return EventPage{}, err
	}
	if f.Patient != "" {
		f.Patient = q.PatientKey(f.Patient)
	}
	asOf, err := q.CatchUp(ctx)
	if err != nil {
		return EventPage{}, err
	}
	events, next, err := q.auditEvents(ctx, f, p)
	if err != nil {
		return EventPage{}, err
	}
	return EventPage{Events: events, Next: next, AsOf: asOf}, nil
}

// auditEvents reads the page and opens its justifications.
func (q *Queries) auditEvents(ctx context.Context, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
	events, next, err := q.cfg.Store.AuditEvents(ctx, f, p)
	if err != nil || q.cfg.Openings == nil {
		return events, next, err
	}
	// Regulators, and only they, see break-glass reasons, opened from
	// their commitments.
	var cs []string
	for _, e := range events {
		if e.JustificationCommitment != "" {
			cs = append(cs, e.JustificationCommitment)
		}
	}
	if len(cs) == 0 {
		return events, next, nil
	}
	open, err := q.cfg.Openings.Openings(ctx, cs)
	if err != nil {
		return nil, "", fmt.Errorf("access: open justifications: %w", err)
	}
	events = slices.Clone(events) // the store's slice is not ours to change
	for i, e := range events {
		if j, ok := open[e.JustificationCommitment]; ok {
			events[i].Justification = j.Reason
		}
	}
	return events, next, nil
}

// AccessEvent returns the access event at ledger index if v may see it
// (a patient: a decision about them; a regulator with audit.read: any);
// consent.ErrNotFound otherwise, exactly as for an index that holds no
// access decision. Viewers who may see no access events get
// ErrForbidden, as for the lists.
func (q *Queries) AccessEvent(ctx context.Context, v auth.Principal, index uint64) (consent.AccessEvent, error) {
	// The lists are newest first and continue below a cursor's index: the
	// page of one after index+1 starts at index if v may see it.
	p := consent.Page{Cursor: consent.EncodeCursor(index + 1), Limit: 1}
	var (
		events []consent.AccessEvent
		err    error
	)
	if v.IsPatient() {
		events, _, err = q.AccessLog(ctx, v, "", p)
	} else {
		events, _, err = q.AuditEvents(ctx, v, consent.AuditFilter{}, p)
	}
	if err != nil {
		return consent.AccessEvent{}, err
	}
	if index == math.MaxUint64 || len(events) == 0 || events[0].Index != index {
		return consent.AccessEvent{}, consent.ErrNotFound
	}
	return events[0], nil
}
