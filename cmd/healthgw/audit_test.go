package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
)

// TestAuditCatchingUp: with more unapplied ledger entries than
// --audit-max-lag, the patient's access log and the regulator's audit
// answer 503 catching_up with Retry-After, never a list that would miss
// a committed decision; within the bound they wait for the backlog and
// answer in full, saying as_of. The patient app's and the console's
// pages do the same: the catching-up message beyond the bound, and
// "complete up to" the ledger size within it.
func TestAuditCatchingUp(t *testing.T) {
	const lag = 5
	g := newTestGateway(t, func(c *serveConfig) { c.AuditMaxLag = lag })
	g.register("hosp-a", auth.KindHospital)
	rtok := g.token(g.register("reg-x", auth.KindRegulator), "")
	ptok := g.patientToken("pat-1")
	if err := g.follower.SyncAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	queries := []struct{ name, path, token string }{
		{"audit", "/v1/audit/events?patient=pat-1", rtok},
		{"access log", "/v1/me/access-log", ptok},
	}
	get := func(path, token string) (*http.Response, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", g.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := g.httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b []byte
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		return resp, b
	}

	patient := newBrowser(t, g.url)
	patient.signIn("app", url.Values{"patient": {"pat-1"}})
	regulator := newBrowser(t, g.url)
	regulator.signIn("console", url.Values{"staff": {"auditor-1"}, "org": {"reg-x"}})
	pages := []struct {
		name string
		b    *browser
		path string
	}{
		{"patient app", patient, "/app/access"},
		{"console", regulator, "/console/audit?patient=pat-1"},
	}

	appendDecisions(t, g, "hosp-a", 4*lag) // not applied: beyond the bound
	for _, pg := range pages {
		status, page := pg.b.get(pg.path)
		if status != http.StatusServiceUnavailable || !strings.Contains(page, "catching up with the ledger") || pg.b.last.Header.Get("Retry-After") == "" {
			t.Errorf("%s %d entries behind: %d (Retry-After %q), want 503 with the catching-up message:\n%s",
				pg.name, 4*lag, status, pg.b.last.Header.Get("Retry-After"), page)
		}
	}
	for _, q := range queries {
		resp, body := get(q.path, q.token)
		e := decode[client.Error](t, body)
		if resp.StatusCode != http.StatusServiceUnavailable || e.Error != "catching_up" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %d entries behind: %d %q (Retry-After %q), want 503 catching_up with Retry-After",
				q.name, 4*lag, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}

	// The follower catches up (serve runs it in the background); then a
	// backlog within the bound is waited for.
	if err := g.follower.SyncAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	appendDecisions(t, g, "hosp-a", lag)
	size := g.size()
	for _, q := range queries {
		resp, body := get(q.path, q.token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", q.name, resp.StatusCode, body)
		}
		list := decode[client.EventList](t, body)
		if len(list.Events) != 5*lag || list.AsOf != size {
			t.Errorf("%s: %d events as of %d, want %d as of %d", q.name, len(list.Events), list.AsOf, 5*lag, size)
		}
	}
	for _, pg := range pages {
		status, page := pg.b.get(pg.path)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", pg.name, status, page)
		}
		if asOf := pageAsOf(t, page); asOf != size {
			t.Errorf("%s: as of %d, want %d", pg.name, asOf, size)
		}
	}
}
