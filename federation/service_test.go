package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
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

func (d fakeDir) Hospitals(context.Context) ([]Peer, error) {
	seen := map[string]bool{}
	var out []Peer
	for _, org := range []string{"hosp-a", "hosp-b", "hosp-c"} {
		if p, ok := d[org]; ok && !seen[p.Gateway] {
			seen[p.Gateway] = true
			out = append(out, p)
		}
	}
	return out, nil
}

type fakeLocal struct {
	readable []records.Record
}

func (l *fakeLocal) Read(context.Context, access.ReadRequest) (access.Result, error) {
	return access.Result{}, access.ErrNotFound
}

func (l *fakeLocal) Readable(context.Context, access.ListRequest) ([]records.Record, error) {
	return l.readable, nil
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
	return New(Config{
		Self: dir["hosp-b"], Signer: reg.signer(t, "gw-b", nil), SealKey: reg.seals["gw-b"],
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

// TestServiceList: the locator merges this gateway's listing with the
// other members', drops records a member claims for orgs it does not
// home, and names the members it could not ask.
func TestServiceList(t *testing.T) {
	reg := newTestRegistry(t)
	srvA := holderServer(t, reg, "gw-a", func(c Claims, caller access.Caller) (int, any) {
		return http.StatusOK, client.RecordList{Records: []client.Record{{ID: "rec-a", Holder: "hosp-a"}, {ID: "rec-c", Holder: "hosp-c"}}}
	})
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	dir := fakeDir{
		"hosp-a": {Gateway: "gw-a", BaseURL: srvA.URL},
		"hosp-b": {Gateway: "gw-b", BaseURL: "http://gw-b.test"},
		"hosp-c": {Gateway: "gw-c", BaseURL: down.URL},
	}
	svc := readerService(t, reg, dir, &fakeLocal{readable: []records.Record{{ID: "rec-b", Holder: "hosp-b"}}})
	l, err := svc.List(t.Context(), access.ListRequest{Caller: callerB, Patient: "pat-1", Purpose: "TREAT"}, consent.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range l.Records {
		got = append(got, r.Record.ID+"@"+r.Home.Gateway)
	}
	if diff := cmp.Diff([]string{"rec-b@gw-b", "rec-a@gw-a"}, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if len(l.Unreachable) != 1 || l.Unreachable[0].Gateway != "gw-c" || !errors.Is(l.Unreachable[0].Err, ErrHolderUnreachable) {
		t.Errorf("unreachable %+v", l.Unreachable)
	}
}

// TestServiceListPages: a paged listing asks each member for a page of
// its own records at its own cursor; following Next lists every record
// of every member once; a member that could not be asked is asked again
// on the next page, from where it was; a forged cursor is refused.
func TestServiceListPages(t *testing.T) {
	reg := newTestRegistry(t)
	const total = 5 // hosp-a's records: ledger indexes 10 … 14
	var downA atomic.Bool
	srvA := holderServer(t, reg, "gw-a", func(c Claims, caller access.Caller) (int, any) {
		if downA.Load() {
			return http.StatusServiceUnavailable, client.Error{Error: "unavailable"}
		}
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
			all = append(all, records.Record{ID: fmt.Sprintf("rec-a%d", i), Holder: "hosp-a", LedgerIndex: uint64(10 + i)})
		}
		page, next, err := access.PageRecords(all, consent.Page{Cursor: u.Query().Get("cursor"), Limit: limit})
		if err != nil {
			return http.StatusBadRequest, client.Error{Error: "invalid_request"}
		}
		list := client.RecordList{NextCursor: next}
		for _, r := range page {
			list.Records = append(list.Records, client.Record{ID: r.ID, Holder: r.Holder})
		}
		return http.StatusOK, list
	})
	dir := fakeDir{
		"hosp-a": {Gateway: "gw-a", BaseURL: srvA.URL},
		"hosp-b": {Gateway: "gw-b", BaseURL: "http://gw-b.test"},
	}
	var local []records.Record
	for i := range 3 {
		local = append(local, records.Record{ID: fmt.Sprintf("rec-b%d", i), Holder: "hosp-b", LedgerIndex: uint64(20 + i)})
	}
	svc := readerService(t, reg, dir, &fakeLocal{readable: local})
	req := access.ListRequest{Caller: callerB, Patient: "pat-1", Purpose: "TREAT"}

	var got []string
	pg := consent.Page{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the cursors do not end")
		}
		downA.Store(pages == 1) // hosp-a's gateway is out for the second page
		l, err := svc.List(t.Context(), req, pg)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 1 && (len(l.Unreachable) != 1 || l.Next == "") {
			t.Errorf("page 2 with gw-a down: unreachable %+v, next %q", l.Unreachable, l.Next)
		}
		if len(l.Records) > 2*pg.Limit {
			t.Errorf("page %d: %d records, more than %d from each of 2 members", pages, len(l.Records), pg.Limit)
		}
		for _, r := range l.Records {
			got = append(got, r.Record.ID)
		}
		if l.Next == "" {
			break
		}
		pg.Cursor = l.Next
	}
	slices.Sort(got)
	want := []string{"rec-a0", "rec-a1", "rec-a2", "rec-a3", "rec-a4", "rec-b0", "rec-b1", "rec-b2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records over all pages (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"x", EncodeListCursor(nil) + "e30", "eyJ2IjoyLCJtIjp7ImEiOiIifX0"} {
		if _, err := svc.List(t.Context(), req, consent.Page{Cursor: bad}); !errors.Is(err, consent.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v, want ErrInvalidCursor", bad, err)
		}
	}
}
