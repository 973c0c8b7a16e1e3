package access_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

// queryStore is the projection with the list queries added.
type queryStore struct {
	*projection
	events []consent.AccessEvent
	filter consent.AuditFilter
}

func (s *queryStore) ListByPatient(_ context.Context, patient string, _ consent.Page) ([]consent.Grant, string, error) {
	var out []consent.Grant
	for _, g := range s.grants {
		if g.Patient == patient {
			out = append(out, g)
		}
	}
	return out, "", nil
}

func (s *queryStore) ListForGrantee(_ context.Context, org string, kind auth.Kind, _ consent.Page) ([]consent.Grant, string, error) {
	var out []consent.Grant
	for _, g := range s.grants {
		if g.VisibleTo(org, kind) {
			out = append(out, g)
		}
	}
	return out, "", nil
}

func (s *queryStore) AccessLog(_ context.Context, patient string, _ consent.Page) ([]consent.AccessEvent, string, error) {
	var out []consent.AccessEvent
	for _, e := range s.events {
		if e.Patient == patient {
			out = append(out, e)
		}
	}
	return out, "", nil
}

func (s *queryStore) AuditEvents(_ context.Context, f consent.AuditFilter, _ consent.Page) ([]consent.AccessEvent, string, error) {
	s.filter = f
	return s.events, "", nil
}

type fakePseud struct{}

func (fakePseud) Pseudonym(p string) string { return pseudonym(p) }

// TestQueries: every viewer sees exactly what it may, and the event
// queries catch the projection up first.
func TestQueries(t *testing.T) {
	w := newWorld(t, consent.Policy{})
	gB := w.grant(t, "pat-1", treatB)
	gKind := w.grant(t, "pat-1", consent.Grant{Grantee: consent.Grantee{Kind: auth.KindHospital}, Effect: consent.Deny, Actions: []consent.Action{consent.ActionRead}})
	gOther := w.grant(t, "pat-2", treatB)
	store := &queryStore{projection: w.proj, events: []consent.AccessEvent{{Index: 1, Patient: pseudonym("pat-1")}, {Index: 2, Patient: pseudonym("pat-2")}}}
	sync := &countingSync{Syncer: w.proj}
	q := access.NewQueries(access.QueriesConfig{Store: store, Pseud: fakePseud{}, Log: w.log, Sync: sync})

	pat1 := auth.Principal{Patient: "pat-1"}
	hospB := auth.Principal{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeConsentsRead}}
	hospA := auth.Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeConsentsRead}}
	hospNoScope := auth.Principal{Org: "hosp-b", Kind: auth.KindHospital}
	reg := auth.Principal{Org: "reg-x", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	ids := func(gs []consent.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	ctx := t.Context()
	for _, tt := range []struct {
		name    string
		v       auth.Principal
		patient string // "" : Consents
		want    []string
		err     error
	}{
		{"patient: own grants", pat1, "", []string{gB.ID, gKind.ID}, nil},
		{"hospital B: grants naming it or its kind", hospB, "", []string{gB.ID, gKind.ID, gOther.ID}, nil},
		{"hospital A: grants naming its kind", hospA, "", []string{gKind.ID}, nil},
		{"hospital without consents.read", hospNoScope, "", nil, access.ErrForbidden},
		{"regulator", reg, "", nil, access.ErrForbidden},
		{"patient asks for self", pat1, "pat-1", []string{gB.ID, gKind.ID}, nil},
		{"patient asks for another", pat1, "pat-2", nil, nil},
		{"hospital B asks for pat-2 by pseudonym", hospB, pseudonym("pat-2"), []string{gOther.ID}, nil},
		{"hospital A asks for pat-1", hospA, "pat-1", []string{gKind.ID}, nil},
	} {
		var got []consent.Grant
		var err error
		if tt.patient == "" {
			got, _, err = q.Consents(ctx, tt.v, consent.Page{})
		} else {
			got, _, err = q.PatientConsents(ctx, tt.v, tt.patient, consent.Page{})
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	for _, tt := range []struct {
		v    auth.Principal
		id   string
		want bool
	}{
		{pat1, gB.ID, true}, {auth.Principal{Patient: "pat-2"}, gB.ID, false}, {hospB, gB.ID, true},
		{hospA, gB.ID, false}, {hospNoScope, gB.ID, false}, {pat1, consent.NewID(), false},
	} {
		g, err := q.Consent(ctx, tt.v, tt.id)
		if tt.want != (err == nil) || !tt.want && !errors.Is(err, consent.ErrNotFound) || tt.want && g.ID != tt.id {
			t.Errorf("Consent(%+v, %s) = %s, %v; want visible %v", tt.v, tt.id, g.ID, err, tt.want)
		}
	}

	before := sync.n
	events, _, err := q.AccessLog(ctx, pat1, "", consent.Page{})
	if err != nil || len(events) != 1 || events[0].Index != 1 || sync.n != before+1 {
		t.Errorf("own access log %+v, %v (synced %d times)", events, err, sync.n-before)
	}
	if events, _, err := q.AccessLog(ctx, pat1, "pat-2", consent.Page{}); err != nil || len(events) != 0 {
		t.Errorf("another patient's access log %+v, %v", events, err)
	}
	if _, _, err := q.AccessLog(ctx, hospA, "", consent.Page{}); !errors.Is(err, access.ErrForbidden) {
		t.Errorf("hospital's access log: %v", err)
	}
	if _, _, err := q.AuditEvents(ctx, reg, consent.AuditFilter{Patient: "pat-1", Decision: consent.Permit}, consent.Page{}); err != nil || store.filter.Patient != pseudonym("pat-1") {
		t.Errorf("audit: %v, filter %+v", err, store.filter)
	}
	var fe *consent.FilterError
	if _, _, err := q.AuditEvents(ctx, reg, consent.AuditFilter{Decision: "maybe"}, consent.Page{}); !errors.As(err, &fe) || fe.PublicMessage() != "decision must be permit or deny." {
		t.Errorf("bad filter: %v", err)
	}
	for _, v := range []auth.Principal{hospA, pat1, {Org: "reg-y", Kind: auth.KindRegulator}} {
		if _, _, err := q.AuditEvents(ctx, v, consent.AuditFilter{}, consent.Page{}); !errors.Is(err, access.ErrForbidden) {
			t.Errorf("audit as %+v: %v", v, err)
		}
	}
	sync.err = errors.New("projection broken")
	if _, _, err := q.AuditEvents(ctx, reg, consent.AuditFilter{}, consent.Page{}); !errors.Is(err, sync.err) {
		t.Errorf("projection failure: %v", err)
	}
}

type countingSync struct {
	access.Syncer
	n   int
	err error
}

func (s *countingSync) Sync(ctx context.Context, size uint64) error {
	s.n++
	if s.err != nil {
		return s.err
	}
	return s.Syncer.Sync(ctx, size)
}

// sizedLog is a log of a given size (its entries are never read here).
type sizedLog struct{ size uint64 }

func (l sizedLog) Size(context.Context) (uint64, error) { return l.size, nil }
func (l sizedLog) Entries(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, errors.New("sizedLog: no entries")
}

// cursorAt is a projection cursor at a fixed position.
type cursorAt struct {
	next uint64
	err  error
}

func (c cursorAt) Next(context.Context) (uint64, error) { return c.next, c.err }

// recordingSync records the sizes it is asked to sync to.
type recordingSync struct{ sizes []uint64 }

func (s *recordingSync) Sync(_ context.Context, size uint64) error {
	s.sizes = append(s.sizes, size)
	return nil
}

// TestQueriesBoundedBacklog: an access-event query waits for a backlog of
// at most MaxLag entries (and then shows every decision before the call);
// beyond, it answers ErrCatchingUp with the positions, and nothing that
// could omit a committed decision.
func TestQueriesBoundedBacklog(t *testing.T) {
	const size, lag = 1_000_000, 100
	pat1 := auth.Principal{Patient: "pat-1"}
	reg := auth.Principal{Org: "reg-x", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}}
	store := &queryStore{projection: &projection{}, events: []consent.AccessEvent{{Index: 7, Patient: pseudonym("pat-1")}}}
	queries := map[string]func(q *access.Queries) (int, error){
		"access log": func(q *access.Queries) (int, error) {
			evs, _, err := q.AccessLog(t.Context(), pat1, "", consent.Page{})
			return len(evs), err
		},
		"audit": func(q *access.Queries) (int, error) {
			evs, _, err := q.AuditEvents(t.Context(), reg, consent.AuditFilter{}, consent.Page{})
			return len(evs), err
		},
		"one event": func(q *access.Queries) (int, error) {
			_, err := q.AccessEvent(t.Context(), reg, 7)
			if err != nil {
				return 0, err
			}
			return 1, nil
		},
	}
	for _, tt := range []struct {
		name      string
		applied   uint64
		catchesUp bool
	}{
		{"caught up", size, false},
		{"one behind", size - 1, false},
		{"at the bound", size - lag, false},
		{"beyond the bound", size - lag - 1, true},
		{"from scratch", 0, true},
	} {
		for qname, query := range queries {
			sync := &recordingSync{}
			q := access.NewQueries(access.QueriesConfig{Store: store, Pseud: fakePseud{}, Log: sizedLog{size}, Sync: sync,
				Applied: cursorAt{next: tt.applied}, MaxLag: lag})
			n, err := query(q)
			if !tt.catchesUp {
				if err != nil || n != 1 || !cmp.Equal(sync.sizes, []uint64{size}) {
					t.Errorf("%s, %s: %d events, %v, synced to %v; want 1 event after syncing to %d", tt.name, qname, n, err, sync.sizes, size)
				}
				continue
			}
			var ce *access.CatchingUpError
			if !errors.Is(err, access.ErrCatchingUp) || !errors.As(err, &ce) || ce.Applied != tt.applied || ce.Size != size {
				t.Errorf("%s, %s: %v, want a CatchingUpError at %d of %d", tt.name, qname, err, tt.applied, size)
			}
			if n != 0 || len(sync.sizes) != 0 {
				t.Errorf("%s, %s: %d events, synced to %v; want none, no waiting", tt.name, qname, n, sync.sizes)
			}
		}
	}
	broken := errors.New("cursor unreadable")
	q := access.NewQueries(access.QueriesConfig{Store: store, Pseud: fakePseud{}, Log: sizedLog{size}, Sync: &recordingSync{},
		Applied: cursorAt{err: broken}})
	if _, _, err := q.AuditEvents(t.Context(), reg, consent.AuditFilter{}, consent.Page{}); !errors.Is(err, broken) {
		t.Errorf("unreadable cursor: %v", err)
	}
}
