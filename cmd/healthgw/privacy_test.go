package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// TestGranteeMustExist: a grant naming an organisation nobody registered,
// an org that cannot read records, or a kind that cannot, is refused with
// a 400 naming the field, and nothing is stored or appended; whoever later
// registers that org ID inherits nothing.
func TestGranteeMustExist(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		w := newWorld(t, func(c *serveConfig) { c.DB = dsn })
		for _, tt := range []struct {
			name    string
			grantee map[string]string
			field   string
		}{
			{"unknown org", map[string]string{"org": "hosp-later"}, "grantee.org"},
			{"a verifier", map[string]string{"org": "ins-v"}, "grantee.org"},
			{"a regulator", map[string]string{"org": "reg-x"}, "grantee.org"},
			{"every verifier", map[string]string{"kind": "verifier"}, "grantee.kind"},
			{"every regulator", map[string]string{"kind": "regulator"}, "grantee.kind"},
			{"an unknown kind", map[string]string{"kind": "astrologer"}, "grantee.kind"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := w.size()
				status, body := w.do("POST", "/v1/consents", w.ptok, map[string]any{"grantee": tt.grantee, "purposes": []string{"TREAT"}})
				e := decode[apiError](t, body)
				if status != http.StatusBadRequest || e.Error != "invalid_request" || !strings.HasPrefix(e.Message, tt.field+": ") {
					t.Fatalf("grant to %v: %d %+v, want 400 naming %s", tt.grantee, status, e, tt.field)
				}
				if after := w.size(); after != before {
					t.Errorf("a refused grant appended %d entries", after-before)
				}
			})
		}
		status, body := w.do("GET", "/v1/consents", w.ptok, nil)
		if status != http.StatusOK {
			t.Fatalf("list consents: %d %s", status, body)
		}
		if got := decode[client.ConsentList](t, body); len(got.Consents) != 0 {
			t.Errorf("refused grants are stored: %+v", got.Consents)
		}
		if got := w.entries(ledger.TypeConsentGranted); len(got) != 0 {
			t.Errorf("refused grants are on the ledger: %d", len(got))
		}

		// The org ID registered afterwards inherits nothing.
		ltok := w.token(w.register("hosp-later", auth.KindHospital), "")
		if status, _ := w.read(ltok, "TREAT"); status != http.StatusNotFound {
			t.Errorf("the org registered later reads the record: %d", status)
		}
		status, body = w.do("GET", "/v1/consents", ltok, nil)
		if status != http.StatusOK {
			t.Fatalf("list consents: %d %s", status, body)
		}
		if got := decode[client.ConsentList](t, body); len(got.Consents) != 0 {
			t.Errorf("the org registered later sees grants: %+v", got.Consents)
		}
		// Now that it exists, the patient may name it.
		w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-later"}, "purposes": []string{"TREAT"}})
		if status, body := w.read(ltok, "TREAT"); status != http.StatusOK {
			t.Errorf("read under a grant to a registered org: %d %s", status, body)
		}
	})
}

// lastAccess is the body of the newest access.decided entry.
func (g *testGateway) lastAccess() *ledger.AccessDecided {
	g.t.Helper()
	es := g.entries(ledger.TypeAccessDecided)
	if len(es) == 0 {
		g.t.Fatal("no access.decided entry")
	}
	return es[len(es)-1].Body.(*ledger.AccessDecided)
}

// TestRequestIDsAreTheGateways: the request ID on the ledger is the
// gateway's own; a client's X-Request-ID is kept as client_request_id
// (bounded, safe charset, else dropped), so one org cannot make its
// entries carry another's request ID.
func TestRequestIDsAreTheGateways(t *testing.T) {
	w := newWorld(t)
	w.read(w.atok, "TREAT", "X-Request-ID", "corr-a-1")
	a := w.lastAccess()
	if a.Requester != "hosp-a" || a.ClientRequestID != "corr-a-1" || a.RequestID == "corr-a-1" || a.RequestID == "" {
		t.Fatalf("hospital A's entry: request_id %q client_request_id %q", a.RequestID, a.ClientRequestID)
	}
	// Hospital B replays A's request ID (the gateway's, seen in the log)
	// and A's own correlation ID.
	seen := map[string]bool{a.RequestID: true}
	for _, reuse := range []string{a.RequestID, "corr-a-1"} {
		w.read(w.btok, "TREAT", "X-Request-ID", reuse)
		b := w.lastAccess()
		if b.Requester != "hosp-b" || seen[b.RequestID] || b.RequestID == reuse {
			t.Errorf("hospital B's entry carries request ID %q (reused %q)", b.RequestID, reuse)
		}
		if b.ClientRequestID != reuse {
			t.Errorf("client_request_id %q, want %q", b.ClientRequestID, reuse)
		}
		seen[b.RequestID] = true
	}
	// A malformed or oversized client ID is dropped, never recorded.
	for _, bad := range []string{"<script>", strings.Repeat("x", 65), "a b", "é"} {
		w.read(w.btok, "TREAT", "X-Request-ID", bad)
		if b := w.lastAccess(); b.ClientRequestID != "" || seen[b.RequestID] {
			t.Errorf("X-Request-ID %q: entry client_request_id %q request_id %q", bad, b.ClientRequestID, b.RequestID)
		} else {
			seen[b.RequestID] = true
		}
	}
	// The regulator sees both, the client's marked as such.
	ev := w.events("/v1/audit/events?org=hosp-a", w.rtok)
	if len(ev.Events) != 1 || ev.Events[0].RequestID != a.RequestID || ev.Events[0].ClientRequestID != "corr-a-1" {
		t.Errorf("audit events %+v", ev.Events)
	}
}
