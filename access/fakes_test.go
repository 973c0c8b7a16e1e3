package access_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/records"
)

// memLog is ledgertest.MemLog with a checkpoint that always covers every
// entry, and fail, when set, refusing an append.
type memLog struct {
	*ledgertest.MemLog
	vkey string
	base uint64 // the org registrations

	mu   sync.Mutex
	fail func(e ledger.Entry) error
}

func newMemLog(t *testing.T) *memLog {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey("access.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &memLog{MemLog: &ledgertest.MemLog{Signer: s}, vkey: vkey}
	l.MemLog.Fail = func(e ledger.Entry) error {
		l.mu.Lock()
		fail := l.fail
		l.mu.Unlock()
		if fail != nil {
			return fail(e)
		}
		return nil
	}
	// The ledger takes entries only for registered orgs: register the
	// tests' orgs first (entries 0 to len(testOrgs)-1).
	for _, id := range slices.Sorted(maps.Keys(testOrgs)) {
		e, err := ledger.NewEntry("gateway", &ledger.OrgRegistered{ID: id, Name: id, Kind: string(testOrgs[id])})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	l.base = uint64(len(testOrgs))
	return l
}

func (l *memLog) setFail(f func(ledger.Entry) error) {
	l.mu.Lock()
	l.fail = f
	l.mu.Unlock()
}

// Checkpoint signs a checkpoint of the whole log (none while it is empty).
func (l *memLog) Checkpoint(ctx context.Context) ([]byte, error) {
	if n, _ := l.Size(ctx); n == 0 {
		return nil, ledger.ErrNotFound
	}
	l.Publish()
	return l.MemLog.Checkpoint(ctx)
}

// decoded returns the entries of type typ.
func (l *memLog) decoded(t *testing.T, typ ledger.Type) []ledger.Entry {
	t.Helper()
	var out []ledger.Entry
	for _, e := range l.decodedFrom(t, 0) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// projection is an in-memory consent projection of a memLog.
type projection struct {
	log    *memLog
	mu     sync.Mutex
	next   uint64
	grants []consent.Grant
	syncs  int
	calls  int // of GrantsFor and GrantsMatching
	// matches counts the calls of GrantsMatching (matchingProjection).
	matches int
}

// matchingProjection is a projection with the index of consentstore: it
// is an access.GrantMatcher.
type matchingProjection struct{ *projection }

var _ access.GrantMatcher = matchingProjection{}

// GrantsMatching returns the grants filed under req's index keys, as
// consentstore.Store.GrantsMatching does.
func (p matchingProjection) GrantsMatching(_ context.Context, req consent.Request) ([]consent.Grant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.matches++
	gk, sk := req.RequestKeys()
	var out []consent.Grant
	for _, g := range p.grants {
		grantee, scopes := g.IndexKeys()
		if g.Patient == req.Patient && slices.Contains(gk[:], grantee) &&
			slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(sk[:], s) }) {
			out = append(out, g)
		}
	}
	return out, nil
}

func (p *projection) matchingCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.matches
}

func (p *projection) grantsForCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func (p *projection) resetCalls() {
	p.mu.Lock()
	p.calls, p.matches = 0, 0
	p.mu.Unlock()
}

func (p *projection) Sync(ctx context.Context, size uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.syncs++
	if size <= p.next {
		return nil
	}
	es, err := p.log.Read(ctx, p.next, size)
	if err != nil {
		return err
	}
	for i, e := range es {
		idx := p.next + uint64(i)
		switch body := e.Body.(type) {
		case *ledger.ConsentGranted:
			// As consentstore: the first grant of an ID wins.
			if !slices.ContainsFunc(p.grants, func(g consent.Grant) bool { return g.ID == body.ConsentID }) {
				p.grants = append(p.grants, consent.FromLedger(idx, e.Time, body))
			}
		case *ledger.ConsentRevoked:
			for j := range p.grants {
				if g := &p.grants[j]; g.ID == body.ConsentID && g.Patient == body.Patient && !g.Revoked {
					g.Revoked, g.RevokedIndex, g.RevokedAt = true, idx, e.Time
				}
			}
		}
	}
	p.next = size
	return nil
}

func (p *projection) GrantsFor(_ context.Context, patient, org string, kind auth.Kind) ([]consent.Grant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	var out []consent.Grant
	for _, g := range p.grants {
		if g.Patient == patient && g.Grantee.Matches(org, kind) {
			out = append(out, g)
		}
	}
	return out, nil
}

func (p *projection) Grant(_ context.Context, id string) (consent.Grant, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.grants {
		if g.ID == id {
			return g, nil
		}
	}
	return consent.Grant{}, consent.ErrNotFound
}

// vault is a fake record vault: records with their plaintext. decrypted
// counts the reads that got past the authorization step.
type vault struct {
	mu        sync.Mutex
	recs      map[string]records.Record
	content   map[string][]byte
	decrypted int
	listErr   error
}

func (v *vault) put(r records.Record, content string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.recs == nil {
		v.recs, v.content = map[string]records.Record{}, map[string][]byte{}
	}
	v.recs[r.ID], v.content[r.ID] = r, []byte(content)
}

func (v *vault) Read(_ context.Context, id string, authorize func(records.Record) error) (records.Record, []byte, error) {
	v.mu.Lock()
	r, ok := v.recs[id]
	v.mu.Unlock()
	if !ok {
		return records.Record{}, nil, records.ErrNotFound
	}
	if err := authorize(r); err != nil {
		return records.Record{}, nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.decrypted++
	return r, append([]byte(nil), v.content[id]...), nil
}

func (v *vault) ReadStream(ctx context.Context, id string, authorize func(records.Record) error) (records.Record, io.ReadCloser, error) {
	r, content, err := v.Read(ctx, id, authorize)
	if err != nil {
		return records.Record{}, nil, err
	}
	return r, io.NopCloser(bytes.NewReader(content)), nil
}

func (v *vault) ListByPatient(_ context.Context, patient string) ([]records.Record, error) {
	if v.listErr != nil {
		return nil, v.listErr
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []records.Record
	for _, r := range v.recs {
		if r.Patient == pseudonym(patient) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (v *vault) decryptedCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.decrypted
}

// pseudonym is the fake pseudonym of a patient ID: ps_ and 64 hex digits.
func pseudonym(patient string) string {
	const hex = "0123456789abcdef"
	b := []byte("ps_")
	for i := range 64 {
		b = append(b, hex[(int(patient[i%len(patient)])+i)%16])
	}
	return string(b)
}

var errAppend = errors.New("disk on fire")

// decodedFrom returns the entries from index on.
func (l *memLog) decodedFrom(t *testing.T, from uint64) []ledger.Entry {
	t.Helper()
	all, err := l.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	return all[from:]
}

func runtimeGosched() { runtime.Gosched() }

// orgs is a registry of organisations by ID.
type orgs map[string]auth.Kind

func (o orgs) Org(_ context.Context, id string) (auth.Org, error) {
	k, ok := o[id]
	if !ok {
		return auth.Org{}, fmt.Errorf("%w: %s", auth.ErrUnknownOrg, id)
	}
	return auth.Org{ID: id, Name: id, Kind: k}, nil
}

// testOrgs are the organisations the tests' grants may name.
var testOrgs = orgs{"hosp-a": auth.KindHospital, "hosp-b": auth.KindHospital, "hosp-c": auth.KindHospital, "ins-v": auth.KindVerifier, "reg-r": auth.KindRegulator}

// justifications is an in-memory store of justification openings.
type justifications struct {
	mu   sync.Mutex
	byC  map[string]ledger.Justification
	fail error
}

func (j *justifications) Put(_ context.Context, o ledger.Justification) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	if j.byC == nil {
		j.byC = map[string]ledger.Justification{}
	}
	j.byC[ledger.JustificationCommitment(o.Salt, o.Reason).String()] = o
	return nil
}

func (j *justifications) Openings(_ context.Context, cs []string) (map[string]ledger.Justification, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]ledger.Justification{}
	for _, c := range cs {
		if o, ok := j.byC[c]; ok {
			out[c] = o
		}
	}
	return out, nil
}
