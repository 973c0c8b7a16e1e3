package main

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/registry"
	"github.com/healthgw/healthgw/web"
)

// secureJar is a cookie jar that treats the loopback test server as
// https: the session cookies are Secure, which net/http's jar would
// otherwise never send over http (browsers treat loopback as a secure
// context and do send them).
type secureJar struct{ *cookiejar.Jar }

func asHTTPS(u *url.URL) *url.URL {
	v := *u
	v.Scheme = "https"
	return &v
}

func (j secureJar) SetCookies(u *url.URL, cs []*http.Cookie) { j.Jar.SetCookies(asHTTPS(u), cs) }
func (j secureJar) Cookies(u *url.URL) []*http.Cookie        { return j.Jar.Cookies(asHTTPS(u)) }

// browser is a cookie-keeping HTTP client: one person's browser.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	last *http.Response
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: secureJar{jar}, Timeout: time.Minute}}
}

func (b *browser) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.last = resp
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "GET", b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), "POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	csrfRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signIn goes through the development IdP's sign-in page as a real
// browser would: area's /login → the IdP's authorize page → its form →
// the area's /callback.
func (b *browser) signIn(area string, fields url.Values) string {
	b.t.Helper()
	status, page := b.get("/" + area + "/login")
	if status != http.StatusOK || !strings.Contains(page, "Development identity provider") {
		b.t.Fatalf("login: %d %s", status, page)
	}
	form := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	_, page = b.post("/dev-idp/authorize", form)
	return page
}

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

func (g *testGateway) registerNamed(id, name string, kind auth.Kind) *authtest.Org {
	g.t.Helper()
	o := authtest.NewOrg(g.t, id, kind, "ES256")
	o.Org.Name = name
	if _, err := registry.Register(g.t.Context(), g.ledger, g.follower, auth.CheckOrgJWKS, o.Org); err != nil {
		g.t.Fatalf("register %s: %v", id, err)
	}
	return o
}

// webWorld is hospitals A and B, a regulator, and one lab record of
// patient pat-1 at A.
type webWorld struct {
	*testGateway
	btok string
	rec  created
}

func newWebWorld(t *testing.T, mutate ...func(*serveConfig)) *webWorld {
	g := newTestGateway(t, mutate...)
	a := g.registerNamed("hosp-a", "Hospital A", auth.KindHospital)
	b := g.registerNamed("hosp-b", "Hospital B", auth.KindHospital)
	g.registerNamed("reg-x", "Health Regulator X", auth.KindRegulator)
	w := &webWorld{testGateway: g, btok: g.token(b, "")}
	w.rec = g.putRecord(g.token(a, ""), "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	return w
}

// grantLabs runs the grant wizard: Hospital B, labs, treatment.
func (w *webWorld) grantLabs(t *testing.T, b *browser) string {
	t.Helper()
	status, page := b.get("/app/consents/new?q=hospital+b")
	if status != http.StatusOK || !strings.Contains(page, "Hospital B") || strings.Contains(page, ">Hospital A <") {
		t.Fatalf("wizard search: %d %s", status, page)
	}
	now := time.Now().UTC()
	status, page = b.post("/app/consents", url.Values{
		"csrf": {csrfOf(t, page)}, "org": {"hosp-b"}, "category": {"labs"}, "purpose": {"TREAT"},
		"from": {now.Format("2006-01-02")}, "until": {now.AddDate(1, 0, 0).Format("2006-01-02")},
	})
	if status != http.StatusOK || !strings.Contains(page, "Your consent has been recorded.") {
		t.Fatalf("grant: %d %s", status, page)
	}
	want := "Hospital B may read your lab results for treatment until " + now.AddDate(1, 0, 0).Format("2 January 2006") + "."
	if !strings.Contains(page, want) {
		t.Errorf("consent page lacks %q:\n%s", want, page)
	}
	if !strings.Contains(page, `class="receipt card"`) || !strings.Contains(page, "data-checkpoint=") {
		t.Errorf("consent page has no receipt")
	}
	return strings.TrimPrefix(b.last.Request.URL.Path, "/app/consents/")
}

// pageAsOf reads the ledger size a page says it is complete for.
func pageAsOf(t *testing.T, page string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`id="as-of" data-as-of="(\d+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Errorf("page does not say what it is complete for:\n%s", page)
		return 0
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWebStory is the story over HTTP, without a browser: a
// patient signs in through the development IdP, grants Hospital B lab
// results for treatment, B reads, the patient sees the read and revokes,
// B is denied, a regulator finds both decisions and exports them.
func TestWebStory(t *testing.T) {
	w := newWebWorld(t)
	p := newBrowser(t, w.url)
	page := p.signIn("app", url.Values{"patient": {"pat-1"}})
	if !strings.Contains(page, "My consents") || !strings.Contains(page, "You have no active consents.") {
		t.Fatalf("after sign-in: %s", page)
	}
	id := w.grantLabs(t, p)

	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusOK {
		t.Fatalf("B reads under consent: %d %s", status, body)
	}
	_, page = p.get("/app/access")
	if !strings.Contains(page, "Hospital B") || !strings.Contains(page, "Allowed") || !strings.Contains(page, "allowed by your consent") {
		t.Errorf("access log lacks B's permitted read:\n%s", page)
	}
	if !strings.Contains(page, "<svg") {
		t.Errorf("access log has no chart")
	}

	status, page := p.get("/app/consents/" + id + "/revoke")
	if status != http.StatusOK {
		t.Fatalf("revoke confirmation: %d %s", status, page)
	}
	status, page = p.post("/app/consents/"+id+"/revoke", url.Values{"csrf": {csrfOf(t, page)}})
	if status != http.StatusOK || !strings.Contains(page, "Your consent has been withdrawn.") || strings.Count(page, `class="receipt card"`) != 2 {
		t.Fatalf("revoke: %d %s", status, page)
	}
	if status, _ := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusNotFound {
		t.Fatalf("B reads after revocation: %d, want 404", status)
	}
	_, page = p.get("/app/access")
	if !strings.Contains(page, "Refused") || !strings.Contains(page, "your consent was withdrawn") {
		t.Errorf("access log lacks B's denied read:\n%s", page)
	}
	_, page = p.get("/app/consents")
	if !strings.Contains(page, "You withdrew the permission for Hospital B to read your lab results for treatment on") {
		t.Errorf("consents page lacks the withdrawn grant:\n%s", page)
	}

	r := newBrowser(t, w.url)
	page = r.signIn("console", url.Values{"staff": {"auditor-1"}, "org": {"reg-x"}})
	if !strings.Contains(page, "Ledger status") || !strings.Contains(page, `id="ledger-verify"`) {
		t.Fatalf("console after sign-in: %s", page)
	}
	sizeNow, err := w.ledger.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, page = r.get("/console/audit?patient=pat-1&org=hosp-b")
	if strings.Count(page, "<tr class=") != 2 || !strings.Contains(page, "Allowed") || !strings.Contains(page, "Refused") {
		t.Errorf("audit search: want B's permit and deny:\n%s", page)
	}
	if asOf := pageAsOf(t, page); asOf < sizeNow {
		t.Errorf("audit page as of %d, want at least %d", asOf, sizeNow)
	}
	status, body := r.get("/console/audit.csv?patient=pat-1&org=hosp-b")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if status != http.StatusOK || err != nil || len(rows) != 3 || rows[1][7] != "deny" || rows[2][7] != "permit" {
		t.Errorf("CSV export: %d %v %q", status, err, rows)
	}
	if h := r.last.Header.Get(web.AsOfHeader); h == "" || h == "0" {
		t.Errorf("CSV export: %s %q", web.AsOfHeader, h)
	}
	status, body = r.get("/console/audit.fhir.json?patient=pat-1&org=hosp-b")
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Meta         struct {
			Extension []struct {
				URL             string `json:"url"`
				ValueIdentifier struct {
					Value string `json:"value"`
				} `json:"valueIdentifier"`
			} `json:"extension"`
		} `json:"meta"`
		Type  string `json:"type"`
		Total int    `json:"total"`
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal([]byte(body), &bundle); status != http.StatusOK || err != nil || bundle.ResourceType != "Bundle" ||
		bundle.Total != 2 || len(bundle.Entry) != 2 || bundle.Entry[0].Resource.ResourceType != "AuditEvent" {
		t.Errorf("FHIR export: %d %v %+v", status, err, bundle)
	}
	if ext := bundle.Meta.Extension; len(ext) != 1 || ext[0].URL != fhir.ExtAsOf || ext[0].ValueIdentifier.Value != r.last.Header.Get(web.AsOfHeader) {
		t.Errorf("FHIR export's as_of: %+v, header %q", bundle.Meta, r.last.Header.Get(web.AsOfHeader))
	}
	// Break-glass: B reads without consent in an emergency; the patient
	// sees it called out, the regulator's report lists it.
	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=ETREAT", w.btok, nil,
		"X-Break-Glass-Reason", "unconscious patient in the emergency department"); status != http.StatusOK {
		t.Fatalf("break-glass read: %d %s", status, body)
	}
	before, err := w.ledger.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, page = p.get("/app/access")
	if !strings.Contains(page, "Emergency access without your consent: 1") || !strings.Contains(page, "row-bg") {
		t.Errorf("access log does not call out the break-glass read:\n%s", page)
	}
	// The page says the ledger size it is complete for: at least the
	// size before it was asked for, which includes the break-glass
	// decision.
	if asOf := pageAsOf(t, page); asOf < before {
		t.Errorf("access page as of %d, want at least %d", asOf, before)
	}
	_, page = p.get("/app/access?break_glass=true")
	if strings.Count(page, "<tr class=") != 1 {
		t.Errorf("break-glass filter: want 1 row:\n%s", page)
	}
	_, page = r.get("/console/break-glass")
	if strings.Count(page, "<tr class=") != 1 || !strings.Contains(page, "emergency access without consent") {
		t.Errorf("break-glass report: want the one emergency read:\n%s", page)
	}
	for _, path := range []string{"/console/break-glass", "/console/hospitals", "/console/ledger"} {
		if status, page := r.get(path); status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, status, page)
		}
	}
}

// TestWebSecurity: CSRF, cross-patient URLs, cookie flags, CSP, sign-out,
// and the console's regulator check.
func TestWebSecurity(t *testing.T) {
	w := newWebWorld(t)
	p1 := newBrowser(t, w.url)
	p1.signIn("app", url.Values{"patient": {"pat-1"}})
	id := w.grantLabs(t, p1)

	t.Run("cookie flags", func(t *testing.T) {
		b := newBrowser(t, w.url)
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		b.get("/app/login")
		var found bool
		for _, c := range b.last.Cookies() {
			if c.Name == "healthgw_app" {
				found = true
				if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/app/" || c.MaxAge != 0 {
					t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/app/, no Max-Age", c)
				}
				if len(c.Value) < 40 || strings.Contains(c.Value, ".") {
					t.Errorf("session cookie value %q is not an opaque random ID", c.Value)
				}
			}
		}
		if !found {
			t.Fatal("no session cookie set by /app/login")
		}
	})

	t.Run("CSP", func(t *testing.T) {
		for _, path := range []string{"/app/", "/app/consents", "/app/access", "/app/proofs", "/app/passkey", "/console/", "/app/nope"} {
			p1.get(path)
			csp := p1.last.Header.Get("Content-Security-Policy")
			for _, want := range []string{"script-src 'self'", "style-src 'self'", "default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s: CSP %q lacks %q", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("%s: CSP allows inline code: %q", path, csp)
			}
		}
		_, page := p1.get("/app/consents/" + id)
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]|style="|<style|onclick=|onload=`).MatchString(page) {
			t.Errorf("page has inline script or style")
		}
	})

	t.Run("receipt", func(t *testing.T) {
		// The receipt the page hands the browser is the entry's leaf,
		// header and opening as the ledger holds them: it verifies in Go
		// as in the page, names the patient by a per-entry reference only
		// (never the pseudonym), and fails with any byte of the leaf, the
		// header or the statement changed.
		_, page := p1.get("/app/consents/" + id)
		attr := func(name string) string {
			m := regexp.MustCompile(`data-` + name + `="([^"]*)"`).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("the receipt has no data-%s", name)
			}
			return html.UnescapeString(m[1])
		}
		b64 := func(name string) []byte {
			b, err := base64.StdEncoding.DecodeString(attr(name))
			if err != nil || len(b) == 0 {
				t.Fatalf("data-%s: %v", name, err)
			}
			return b
		}
		r := ledger.Receipt{Entry: b64("entry"), Header: b64("header"), Opening: b64("opening"), Checkpoint: []byte(attr("checkpoint"))}
		var err error
		if r.Index, err = strconv.ParseUint(attr("index"), 10, 64); err != nil {
			t.Fatal(err)
		}
		if r.TreeSize, err = strconv.ParseUint(attr("size"), 10, 64); err != nil {
			t.Fatal(err)
		}
		for _, h := range strings.Fields(attr("proof")) {
			b, err := base64.StdEncoding.DecodeString(h)
			if err != nil || len(b) != 32 {
				t.Fatalf("proof hash %q", h)
			}
			r.Proof = append(r.Proof, tlog.Hash(b))
		}
		v, err := ledger.ParseVerifierKey(attr("key"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := ledger.VerifyReceipt(r, v, "")
		if err != nil {
			t.Fatalf("the page's receipt does not verify: %v", err)
		}
		if g, ok := st.Body.(*ledger.ConsentGrantedV2); !ok || g.ConsentID != id || g.Grantee.Org != "hosp-b" || !slices.Equal(g.Categories, []string{"labs"}) {
			t.Errorf("the receipt's statement %+v is not the grant", st.Body)
		}
		if pseud := w.pseud.Pseudonym("pat-1"); strings.Contains(page, pseud) || strings.Contains(string(r.Opening), pseud) {
			t.Error("the consent page carries the patient's pseudonym")
		}
		for name, tamper := range map[string]func(r *ledger.Receipt){
			"leaf":      func(r *ledger.Receipt) { r.Entry = flipByte(r.Entry, len(r.Entry)-5) },
			"header":    func(r *ledger.Receipt) { r.Header = flipByte(r.Header, len(r.Header)-5) },
			"statement": func(r *ledger.Receipt) { r.Opening = []byte(strings.Replace(string(r.Opening), "labs", "imaging", 1)) },
		} {
			bad := r
			tamper(&bad)
			if _, err := ledger.VerifyReceipt(bad, v, ""); err == nil {
				t.Errorf("a receipt with its %s changed verifies", name)
			}
		}
	})

	t.Run("CSRF", func(t *testing.T) {
		_, page := p1.get("/app/consents/new")
		good := url.Values{"org": {"hosp-a"}, "category": {"labs"}, "purpose": {"TREAT"},
			"from": {time.Now().UTC().Format("2006-01-02")}, "until": {time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")}}
		for name, token := range map[string][]string{"missing": nil, "empty": {""}, "wrong": {"x" + csrfOf(t, page)[1:]}} {
			form := url.Values{}
			for k, v := range good {
				form[k] = v
			}
			if token != nil {
				form["csrf"] = token
			}
			status, body := p1.post("/app/consents", form)
			if status != http.StatusForbidden || !strings.Contains(body, "This form has expired") {
				t.Errorf("%s token: %d, want 403", name, status)
			}
			status, _ = p1.post("/app/consents/"+id+"/revoke", url.Values{"csrf": token})
			if status != http.StatusForbidden {
				t.Errorf("%s token on revoke: %d, want 403", name, status)
			}
			status, _ = p1.post("/app/logout", url.Values{"csrf": token})
			if status != http.StatusForbidden {
				t.Errorf("%s token on sign-out: %d, want 403", name, status)
			}
			for _, path := range []string{"/app/passkey/begin", "/app/passkey/finish", "/app/sign"} {
				if status, _ = p1.post(path, url.Values{"csrf": token}); status != http.StatusForbidden {
					t.Errorf("%s token on %s: %d, want 403", name, path, status)
				}
			}
		}
		_, page = p1.get("/app/consents")
		if strings.Contains(page, "Hospital A may read") || !strings.Contains(page, "Hospital B may read") {
			t.Errorf("a refused form changed something:\n%s", page)
		}
	})

	t.Run("cross-patient", func(t *testing.T) {
		p2 := newBrowser(t, w.url)
		p2.signIn("app", url.Values{"patient": {"pat-2"}})
		_, page := p2.get("/app/consents")
		csrf := csrfOf(t, page)
		for _, path := range []string{"/app/consents/" + id, "/app/consents/" + id + "/revoke"} {
			status, body := p2.get(path)
			_, missing := p2.get(strings.Replace(path, id, "cns_00000000000000000000000000000000", 1))
			if status != http.StatusNotFound || body != missing {
				t.Errorf("pat-2 GET %s: %d (want 404, same page as a missing consent)", path, status)
			}
		}
		if status, _ := p2.post("/app/consents/"+id+"/revoke", url.Values{"csrf": {csrf}}); status != http.StatusNotFound {
			t.Errorf("pat-2 revokes pat-1's consent: %d, want 404", status)
		}
		pseud1 := w.pseud.Pseudonym("pat-1")
		for _, path := range []string{"/app/consents", "/app/access", "/app/access?org=hosp-b", "/app/consents/new",
			"/app/access?patient=pat-1", "/app/consents?patient=pat-1"} {
			status, body := p2.get(path)
			if status != http.StatusOK || strings.Contains(body, pseud1) || strings.Contains(body, "Hospital B may read") || strings.Contains(body, w.rec.ID) {
				t.Errorf("pat-2 %s: %d shows pat-1's data", path, status)
			}
		}
		if status, _ := p2.get("/console/audit?patient=pat-1"); status != http.StatusOK || !strings.Contains(p2.last.Request.URL.Path, "/dev-idp/authorize") {
			t.Errorf("a patient reached the console: %d %s", status, p2.last.Request.URL)
		}
		_, page = p1.get("/app/consents")
		if !strings.Contains(page, "Hospital B may read") {
			t.Errorf("pat-1's consent changed")
		}
	})

	t.Run("sign-out", func(t *testing.T) {
		b := newBrowser(t, w.url)
		b.signIn("app", url.Values{"patient": {"pat-3"}})
		_, page := b.get("/app/consents")
		old := b.c.Jar.Cookies(mustURL(t, w.url+"/app/"))
		status, page := b.post("/app/logout", url.Values{"csrf": {csrfOf(t, page)}})
		if status != http.StatusOK || !strings.Contains(page, "You have signed out.") {
			t.Fatalf("sign-out: %d %s", status, page)
		}
		// The old session ID is dead on the server, not only in the browser.
		replay := newBrowser(t, w.url)
		replay.c.Jar.SetCookies(mustURL(t, w.url+"/app/"), old)
		replay.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if status, _ := replay.get("/app/consents"); status != http.StatusSeeOther || replay.last.Header.Get("Location") != "/app/login" {
			t.Errorf("old session after sign-out: %d %s", status, replay.last.Header.Get("Location"))
		}
	})

	t.Run("console needs a regulator", func(t *testing.T) {
		b := newBrowser(t, w.url)
		page := b.signIn("console", url.Values{"staff": {"mallory"}, "org": {"hosp-b"}})
		if b.last.StatusCode != http.StatusForbidden || !strings.Contains(page, "not allowed to use the regulator console") {
			t.Errorf("hospital staff in the console: %d %s", b.last.StatusCode, page)
		}
		if status, _ := b.get("/console/audit"); status != http.StatusOK || !strings.Contains(b.last.Request.URL.Path, "/dev-idp/authorize") {
			t.Errorf("refused staff has a session: %d", status)
		}
	})
}

// flipByte returns b with the byte at i changed.
func flipByte(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 1
	return out
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// witnessedWorld is the web world with two witnesses following its log
// and a threshold of two, both having cosigned the latest checkpoint.
type witnessedWorld struct {
	*webWorld
	w1, w2 *lateWitness
}

func newWitnessedWorld(t *testing.T) *witnessedWorld {
	t.Helper()
	w1, w2 := newLateWitness(t, "witness-1.example"), newLateWitness(t, "witness-2.example")
	ww := &witnessedWorld{w1: w1, w2: w2}
	ww.webWorld = newWebWorld(t, func(c *serveConfig) {
		c.Witnesses = listFlag{w1.vkey + "@" + w1.srv.URL, w2.vkey + "@" + w2.srv.URL}
		c.WitnessThreshold = 2
	})
	origin := ledgerOrigin(ww.store, ww.cfg)
	w1.follow(t, origin, ww.vkey)
	w2.follow(t, origin, ww.vkey)
	ww.submit(2)
	return ww
}

// submit waits for a checkpoint of the whole log and submits it to the
// witnesses, wanting n cosignatures.
func (ww *witnessedWorld) submit(n int) {
	ww.t.Helper()
	ww.waitCheckpoint()
	if got, err := ww.witnesses.Submit(ww.t.Context()); err != nil || got != n {
		ww.t.Fatalf("Submit: %d cosignatures, %v; want %d", got, err, n)
	}
}

// keyID is a witness verifier key's key hash as the page shows it.
func keyID(t *testing.T, vkey string) (name, id string) {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		t.Fatalf("witness key %q", vkey)
	}
	return parts[0], parts[1]
}

// TestWebWitnesses: the console's ledger status names the witnesses that
// cosigned the latest submitted checkpoint, with key IDs and times, and
// says whether the threshold is met; once a witness is down it is not.
func TestWebWitnesses(t *testing.T) {
	ww := newWitnessedWorld(t)
	r := newBrowser(t, ww.url)
	page := r.signIn("console", url.Values{"staff": {"auditor-1"}, "org": {"reg-x"}})
	for _, w := range []*lateWitness{ww.w1, ww.w2} {
		name, id := keyID(t, w.vkey)
		if !strings.Contains(page, `<code class="witness-name">`+name+"</code>") || !strings.Contains(page, `<code class="witness-key">`+id+"</code>") {
			t.Errorf("ledger status lacks witness %s (%s)", name, id)
		}
	}
	if strings.Count(page, "Yes, at ") != 2 || !strings.Contains(page, "2 of 2 witnesses cosigned; 2 required: met") ||
		!strings.Contains(page, `data-threshold="2"`) || strings.Contains(page, "None configured") {
		t.Errorf("ledger status with both witnesses:\n%s", page)
	}
	ww.w2.srv.Close()
	ww.registerNamed("hosp-c", "Hospital C", auth.KindHospital)
	ww.submit(1)
	_, page = r.get("/console/")
	if strings.Count(page, "Yes, at ") != 1 || !strings.Contains(page, "1 of 2 witnesses cosigned; 2 required: not met") {
		t.Errorf("ledger status with one witness down:\n%s", page)
	}
	// Without witnesses the page says so.
	plain := newWebWorld(t)
	page = newBrowser(t, plain.url).signIn("console", url.Values{"staff": {"auditor-1"}, "org": {"reg-x"}})
	if !strings.Contains(page, "None configured on this gateway") || strings.Contains(page, `id="witnesses"`) {
		t.Errorf("ledger status without witnesses:\n%s", page)
	}
}
