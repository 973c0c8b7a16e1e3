package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

type fakeDir map[string]Peer // org -> home

func (d fakeDir) Home(_ context.Context, org string) (Peer, bool, error) {
	p, ok := d[org]
	return p, ok, nil
}

// Gateway finds a gateway among the homes, or under the key "gw:" + id
// (a gateway homing no org, such as a custodian).
func (d fakeDir) Gateway(_ context.Context, id string) (Peer, bool, error) {
	if p, ok := d["gw:"+id]; ok {
		return p, true, nil
	}
	for _, p := range d {
		if p.Gateway == id {
			return p, true, nil
		}
	}
	return Peer{}, false, nil
}

type fakeLocal struct {
	located []records.Record
	asked   int
}

func (l *fakeLocal) Read(context.Context, access.ReadRequest) (access.Result, error) {
	return access.Result{}, access.ErrNotFound
}

func (l *fakeLocal) Locate(context.Context, access.ListRequest) ([]records.Record, error) {
	l.asked++
	return l.located, nil
}

type fakeOrgs map[string]auth.Kind

func (o fakeOrgs) Org(_ context.Context, id string) (auth.Org, error) {
	k, ok := o[id]
	if !ok {
		return auth.Org{}, auth.ErrUnknownOrg
	}
	return auth.Org{ID: id, Kind: k, Scopes: []auth.Scope{auth.ScopeRecordsRead}}, nil
}

// holderServer is gateway gw's holder side as the API runs it: answer
// gives the status and the body to seal for a verified request (a
// non-200 status is sent as is); signKey, if set, seals with another
// node key than gw's (a forgery).
func holderServer(t *testing.T, reg *testRegistry, gw string, answer func(c Claims, caller access.Caller) (int, any)) *httptest.Server {
	h := NewHolder(gw, reg.nodes[gw], reg, fakeOrgs{"hosp-a": auth.KindHospital, "hosp-b": auth.KindHospital, "hosp-c": auth.KindHospital}, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("Authorization")[len("Bearer "):]
		c, caller, err := h.Authorize(r.Context(), tok, r.Method, CanonicalTarget(r.URL))
		if err != nil {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		status, v := answer(c, caller)
		if status != http.StatusOK {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(v)
			return
		}
		body, _ := json.Marshal(v)
		sealed, err := h.SealAnswer(c, body)
		if err != nil {
			t.Error(err)
		}
		w.Write(sealed)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func readerService(t *testing.T, reg *testRegistry, dir fakeDir, local *fakeLocal) *Service {
	return custodianService(t, reg, dir, local, "")
}

// custodianService is gw-b's reader side with custodian as the
// consortium's custodian.
func custodianService(t *testing.T, reg *testRegistry, dir fakeDir, local *fakeLocal, custodian string) *Service {
	return New(Config{
		Self: dir["hosp-b"], Custodian: custodian, Signer: reg.signer(t, "gw-b", nil), SealKey: reg.seals["gw-b"],
		Registry: reg, Directory: dir, Local: local,
	})
}

var callerB = access.Caller{Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}}

// TestServiceRead: the holder's answers as the reader's gateway takes
// them: a permit opened, a deny as a deny, a holder that cannot decide or
// cannot be asked never as one, and an answer sealed by another gateway
// refused.
func TestServiceRead(t *testing.T) {
	reg := newTestRegistry(t)
	var status int
	var got access.Caller
	srvA := holderServer(t, reg, "gw-a", func(c Claims, caller access.Caller) (int, any) {
		got = caller
		if status != http.StatusOK {
			return status, client.Error{Error: "x"}
		}
		return status, client.FederatedRecord{Record: client.Record{ID: "rec-1", Holder: "hosp-a", ContentType: "text/plain"}, Content: []byte("secret")}
	})
	// A forger in the path answers "as gw-a", for this very request,
	// sealed to gw-b, signed with another gateway's node key.
	forger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg, err := jws.Parse([]byte(r.Header.Get("Authorization")[len("Bearer "):]))
		if err != nil {
			t.Error(err)
			return
		}
		var c Claims
		_ = json.Unmarshal(msg.Payload(), &c)
		body, _ := json.Marshal(client.FederatedRecord{Record: client.Record{ID: "rec-1", Holder: "hosp-a"}, Content: []byte("forged")})
		sealed, err := Seal(body, c.ID, "gw-a", reg.nodes["gw-c"], reg.seals["gw-b"].PublicKey())
		if err != nil {
			t.Error(err)
		}
		w.Write(sealed)
	}))
	defer forger.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	dir := fakeDir{"hosp-a": {Gateway: "gw-a", BaseURL: srvA.URL}, "hosp-b": {Gateway: "gw-b", BaseURL: "http://gw-b.test"}}
	svc := readerService(t, reg, dir, &fakeLocal{})
	req := ReadRequest{ReadRequest: access.ReadRequest{Caller: callerB, RecordID: "rec-1", Purpose: "TREAT"}, Holder: "hosp-a"}

	status = http.StatusOK
	res, err := svc.Read(t.Context(), req)
	if err != nil || string(res.Content) != "secret" || res.Record.ID != "rec-1" || res.Local {
		t.Fatalf("permitted read: %+v, %v", res, err)
	}
	if diff := cmp.Diff(callerB, got); diff != "" {
		t.Errorf("the holder decided for (-want +got):\n%s", diff)
	}
	for st, want := range map[int]error{
		http.StatusNotFound:            access.ErrNotFound,
		http.StatusServiceUnavailable:  ErrHolderUnavailable,
		http.StatusInternalServerError: ErrHolderFailed,
	} {
		status = st
		if _, err := svc.Read(t.Context(), req); !errors.Is(err, want) {
			t.Errorf("holder answers %d: %v, want %v", st, err, want)
		}
	}
	for name, tt := range map[string]struct {
		url  string
		want error
	}{
		"holder down":           {down.URL, ErrHolderUnreachable},
		"forged answer":         {forger.URL, ErrBadAnswer},
		"no usable base URL":    {"ftp://gw-a.test", ErrHolderUnreachable},
		"holder URL unroutable": {"http://127.0.0.1:1", ErrHolderUnreachable},
	} {
		svc := readerService(t, reg, fakeDir{"hosp-a": {Gateway: "gw-a", BaseURL: tt.url}, "hosp-b": dir["hosp-b"]}, &fakeLocal{})
		_, err := svc.Read(t.Context(), req)
		if !errors.Is(err, tt.want) || errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
	if _, err := svc.Read(t.Context(), ReadRequest{ReadRequest: req.ReadRequest, Holder: "hosp-z"}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("unregistered holder: %v, want not found", err)
	}
}

// TestServiceList: the locator asks the custodian's gateway only (never
// a holder, which would learn who is asked about), for the caller's org,
// and gives each record its holder's home; records of an org with no home
// are dropped; a custodian that cannot be asked or answers wrongly fails
// the listing, saying so; at the custodian itself the listing is local.
func TestServiceList(t *testing.T) {
	reg := newTestRegistry(t)
	var holderAsked atomic.Int32
	srvA := holderServer(t, reg, "gw-a", func(Claims, access.Caller) (int, any) {
		holderAsked.Add(1)
		return http.StatusOK, client.RecordList{}
	})
	var (
		custStatus atomic.Int32
		custAsked  atomic.Value // the Claims and caller of the last request
	)
	custStatus.Store(http.StatusOK)
	srvC := holderServer(t, reg, "gw-c", func(c Claims, caller access.Caller) (int, any) {
		custAsked.Store([2]any{c, caller})
		if st := int(custStatus.Load()); st != http.StatusOK {
			return st, client.Error{Error: "x", Message: "not now"}
		}
		return http.StatusOK, client.RecordList{Records: []client.Record{
			{ID: "rec-b", Holder: "hosp-b", Size: 7, ContentType: "text/plain", LedgerIndex: 9},
			{ID: "rec-a", Holder: "hosp-a", LedgerIndex: 8},
			{ID: "rec-z", Holder: "hosp-z", LedgerIndex: 7}, // no home: dropped
		}, NextCursor: "c2"}
	})
	dir := fakeDir{
		"hosp-a":   {Gateway: "gw-a", BaseURL: srvA.URL},
		"hosp-b":   {Gateway: "gw-b", BaseURL: "http://gw-b.test"},
		"gw:gw-c":  {Gateway: "gw-c", BaseURL: srvC.URL},
		"gw:gw-c2": {Gateway: "gw-c2", BaseURL: srvC.URL}, // answers as gw-c: its seal does not verify
	}
	local := &fakeLocal{}
	svc := custodianService(t, reg, dir, local, "gw-c")
	req := access.ListRequest{Caller: callerB, Patient: "pat-1", Purpose: "TREAT"}
	l, err := svc.List(t.Context(), req, consent.Page{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range l.Records {
		got = append(got, fmt.Sprintf("%s@%s local=%v size=%d", r.Record.ID, r.Home.Gateway, r.Local, r.Record.Size))
	}
	if diff := cmp.Diff([]string{"rec-b@gw-b local=true size=7", "rec-a@gw-a local=false size=0"}, got); diff != "" || l.Next != "c2" {
		t.Errorf("records (-want +got):\n%s next %q", diff, l.Next)
	}
	asked, _ := custAsked.Load().([2]any)
	if c, _ := asked[0].(Claims); c.Org != "hosp-b" || c.Gateway != "gw-b" || !strings.Contains(c.Target, "/v1/federation/patients/pat-1/records?") || !strings.Contains(c.Target, "purpose=TREAT") || !strings.Contains(c.Target, "limit=3") {
		t.Errorf("the custodian was asked %+v", c)
	}
	if holderAsked.Load() != 0 || local.asked != 0 {
		t.Errorf("a holder was asked %d times, the local listing %d: the custodian answers alone", holderAsked.Load(), local.asked)
	}

	for name, tt := range map[string]struct {
		custodian string
		status    int
		want      error
	}{
		"custodian unavailable":  {"gw-c", http.StatusServiceUnavailable, ErrLocatorUnavailable},
		"custodian error":        {"gw-c", http.StatusInternalServerError, ErrLocatorFailed},
		"custodian 404":          {"gw-c", http.StatusNotFound, ErrLocatorFailed},
		"answer sealed by other": {"gw-c2", http.StatusOK, ErrLocatorFailed},
		"custodian unregistered": {"gw-x", http.StatusOK, ErrLocatorFailed},
	} {
		custStatus.Store(int32(tt.status))
		_, err := custodianService(t, reg, dir, local, tt.custodian).List(t.Context(), req, consent.Page{})
		if !errors.Is(err, tt.want) || errors.Is(err, ErrHolderUnreachable) || errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
	srvC.Close()
	if _, err := svc.List(t.Context(), req, consent.Page{}); !errors.Is(err, ErrLocatorUnreachable) {
		t.Errorf("custodian down: %v, want ErrLocatorUnreachable", err)
	}

	// At the custodian (or without one) the listing is this gateway's
	// Locate, paged here.
	local.located = []records.Record{{ID: "rec-a", Holder: "hosp-a", LedgerIndex: 1}, {ID: "rec-b", Holder: "hosp-b", LedgerIndex: 2}}
	for _, cust := range []string{"", "gw-b"} {
		l, err := custodianService(t, reg, dir, local, cust).List(t.Context(), req, consent.Page{Limit: 1})
		if err != nil || len(l.Records) != 1 || l.Records[0].Record.ID != "rec-b" || !l.Records[0].Local || l.Next == "" {
			t.Errorf("custodian %q: %+v %v", cust, l, err)
		}
	}
	if holderAsked.Load() != 0 {
		t.Errorf("a holder was asked %d times", holderAsked.Load())
	}
}

// TestServiceListPages: following Next through the custodian lists every
// record once, newest first; a cursor that is not one is refused here,
// without asking the custodian.
func TestServiceListPages(t *testing.T) {
	reg := newTestRegistry(t)
	const total = 5 // ledger indexes 10 … 14, held by hosp-a and hosp-b
	var asked atomic.Int32
	srvC := holderServer(t, reg, "gw-c", func(c Claims, caller access.Caller) (int, any) {
		asked.Add(1)
		u, err := url.Parse(c.Target)
		if err != nil {
			t.Error(err)
		}
		limit, err := strconv.Atoi(u.Query().Get("limit"))
		if err != nil {
			t.Errorf("page without a limit: %s", c.Target)
		}
		var all []records.Record
		for i := range total {
			all = append(all, records.Record{ID: fmt.Sprintf("rec-%d", i), Holder: []string{"hosp-a", "hosp-b"}[i%2], LedgerIndex: uint64(10 + i)})
		}
		page, next, err := access.PageRecords(all, consent.Page{Cursor: u.Query().Get("cursor"), Limit: limit})
		if err != nil {
			return http.StatusBadRequest, client.Error{Error: "invalid_request"}
		}
		list := client.RecordList{NextCursor: next}
		for _, r := range page {
			list.Records = append(list.Records, client.Record{ID: r.ID, Holder: r.Holder, LedgerIndex: r.LedgerIndex})
		}
		return http.StatusOK, list
	})
	dir := fakeDir{
		"hosp-a":  {Gateway: "gw-a", BaseURL: "http://gw-a.test"},
		"hosp-b":  {Gateway: "gw-b", BaseURL: "http://gw-b.test"},
		"gw:gw-c": {Gateway: "gw-c", BaseURL: srvC.URL},
	}
	svc := custodianService(t, reg, dir, &fakeLocal{}, "gw-c")
	req := access.ListRequest{Caller: callerB, Patient: "pat-1", Purpose: "TREAT"}

	var got []string
	pg := consent.Page{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the cursors do not end")
		}
		l, err := svc.List(t.Context(), req, pg)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Records) > pg.Limit {
			t.Errorf("page %d: %d records, more than %d", pages, len(l.Records), pg.Limit)
		}
		for _, r := range l.Records {
			got = append(got, r.Record.ID)
		}
		if l.Next == "" {
			break
		}
		pg.Cursor = l.Next
	}
	want := []string{"rec-4", "rec-3", "rec-2", "rec-1", "rec-0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records over all pages (-want +got):\n%s", diff)
	}
	n := asked.Load()
	for _, bad := range []string{"x", "eyJ2IjoyLCJtIjp7ImEiOiIifX0", strings.Repeat("9", 300)} {
		if _, err := svc.List(t.Context(), req, consent.Page{Cursor: bad}); !errors.Is(err, consent.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", bad, err)
		}
	}
	if asked.Load() != n {
		t.Errorf("a forged cursor was sent to the custodian")
	}
}
