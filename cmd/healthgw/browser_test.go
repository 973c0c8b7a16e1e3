package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
)

// Browser tests drive headless Chromium through the patient app and the
// console. Locally they skip when no Chromium is installed; CI sets
// HEALTHGW_REQUIRE_BROWSER=1 and installs the Debian package chromium, so
// there they fail instead. HEALTHGW_CHROME names another binary;
// HEALTHGW_SCREENSHOTS another folder for the screenshots (default
// web/testdata/screenshots, git-ignored).

func chromePath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HEALTHGW_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HEALTHGW_REQUIRE_BROWSER") == "1" {
		t.Fatal("HEALTHGW_REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium, or set HEALTHGW_CHROME)")
	}
	t.Skip("browser tests skipped: no Chromium found (apt-get install -y chromium, or set HEALTHGW_CHROME)")
	return ""
}

// newChrome starts a fresh headless Chromium with its own profile.
func newChrome(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromePath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	// Generous: the machines are small and shared; every wait below is on
	// a condition, never on a clock.
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// steps runs browser actions, failing the test on an error.
func steps(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Array.from(document.querySelectorAll("[data-verified]")).map(e => [e.dataset.verified, e.dataset.reason]))`))
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s, verification %s, page:\n%s", what, err, loc, state, body)
	}
}

// value runs one browser action that returns a value.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// await evaluates a JavaScript expression, awaiting a promise.
func await[T any](expr string) chromedp.Action[T] {
	return chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise)
}

// pageText returns the text of the page's body.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return value(t, ctx, "read page", chromedp.Text(chromedp.CSS("body")))
}

// poll waits until a JavaScript condition holds.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return err
	})
}

// pollAcrossNavigation waits until a JavaScript condition holds on a page
// that may still be navigating (a submitted form): an evaluation the
// navigation interrupts is tried again on the next tick, until the
// condition holds or the steps' deadline ends.
func pollAcrossNavigation(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				if err != nil {
					return fmt.Errorf("%w (last evaluation: %v)", ctx.Err(), err)
				}
				return ctx.Err()
			case <-tick.C:
			}
		}
	})
}

// browserSignIn signs in through the development IdP's page as a person
// would: the area's sign-in button, the IdP's form, back to the area.
func browserSignIn(t *testing.T, ctx context.Context, base, area, field, value string) {
	t.Helper()
	steps(t, ctx, "sign in to "+area,
		chromedp.Navigate(base+"/"+area+"/"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#"+field)),
		chromedp.SetValue(chromedp.CSS("#"+field), value),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("form.signout")),
	)
}

// axeViolation is a serious or critical axe-core finding.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkA11y runs the vendored axe-core on the page (injected through the
// DevTools protocol, which the page's CSP does not govern) and fails on
// any serious or critical violation.
func checkA11y(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "web", "testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	steps(t, ctx, "inject axe-core", chromedp.Evaluate[chromedp.Void](string(src)+";undefined"))
	got := value(t, ctx, "axe on "+page,
		await[[]axeViolation](`axe.run(document, {resultTypes: ["violations"], runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})
			.then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))`))
	for _, v := range got {
		t.Errorf("%s: axe %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
	}
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("HEALTHGW_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "web", "testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// viewports are the widths every main page is shot and checked at.
var viewports = []struct {
	name   string
	w, h   int64
	mobile bool
}{{"1280", 1280, 900, false}, {"360", 360, 780, true}}

// capture shoots path in both languages at both widths and runs axe-core
// on each; after, if given, runs on each page once it is loaded (to shoot
// a page with its in-browser verification done, say).
func capture(t *testing.T, ctx context.Context, base, name, path string, after ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	dir := screenshotDir(t)
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for _, lang := range []string{"en", "zh-CN"} {
		for _, vp := range viewports {
			vpOpts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
			if vp.mobile {
				vpOpts = append(vpOpts, chromedp.EmulateMobile)
			}
			steps(t, ctx, "load "+name,
				chromedp.EmulateViewport(vp.w, vp.h, vpOpts...),
				chromedp.Navigate(base+path+sep+"lang="+lang),
				chromedp.WaitReady(chromedp.CSS("footer")),
				waitVerifications(),
			)
			steps(t, ctx, "after loading "+name, after...)
			buf := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", name, lang, vp.name)), buf, 0o644); err != nil {
				t.Fatal(err)
			}
			checkA11y(t, ctx, fmt.Sprintf("%s (%s, %s px)", name, lang, vp.name))
		}
	}
	steps(t, ctx, "reset", chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+path+sep+"lang=en"))
}

// waitVerifications waits until no receipt on the page is still being
// checked.
func waitVerifications() chromedp.Action[chromedp.Void] {
	return poll(`Array.from(document.querySelectorAll(".receipt")).every(e => e.dataset.verified === "ok" || e.dataset.verified === "bad")`)
}

// TestBrowserStory is the story in a real browser, with
// screenshots and an accessibility check of every main page.
func TestBrowserStory(t *testing.T) {
	ctx := newChrome(t)
	w := newWebWorld(t)
	base := w.url

	// A patient signs in through the development IdP.
	capture(t, ctx, base, "app-home", "/app/")
	browserSignIn(t, ctx, base, "app", "patient", "pat-1")

	// The session cookie as the browser holds it.
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/app/"}})
	if err != nil {
		t.Fatal(err)
	}
	var sess *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "healthgw_app" {
			sess = c
		}
	}
	if sess == nil || !sess.HTTPOnly || !sess.Secure || sess.SameSite != network.CookieSameSiteLax || sess.Path != "/app/" || !sess.Session {
		t.Fatalf("session cookie in the browser: %+v", sess)
	}
	fromJS := value(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(fromJS, "healthgw_app") {
		t.Errorf("scripts can read the session cookie: %q", fromJS)
	}

	capture(t, ctx, base, "app-consents-empty", "/app/consents")
	capture(t, ctx, base, "app-grant", "/app/consents/new")

	// Grant Hospital B lab results for treatment with the wizard.
	steps(t, ctx, "grant",
		chromedp.Navigate(base+"/app/consents/new?q=Hospital+B"),
		chromedp.Click(chromedp.CSS(`input[name="org"][value="hosp-b"]`)),
		chromedp.Click(chromedp.CSS(`input[name="category"][value="labs"]`)),
		chromedp.Click(chromedp.CSS("#grant-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.receipt[data-verified="ok"]`)),
	)
	url := value(t, ctx, "location", chromedp.Location())
	id := strings.TrimPrefix(strings.SplitN(url, "?", 2)[0], base+"/app/consents/")
	if txt := pageText(t, ctx); !strings.Contains(txt, "Hospital B may read your lab results for treatment until") || !strings.Contains(txt, "Verified in your browser") {
		t.Fatalf("consent page: %s", txt)
	}
	capture(t, ctx, base, "app-receipt", "/app/consents/"+id)

	// What the receipt says comes from the verified statement.
	says := value(t, ctx, "receipt says", chromedp.Evaluate[string](`document.querySelector(".receipt .receipt-says").textContent`))
	for _, want := range []string{"consent.granted", "Hospital B (hosp-b)", "labs", "TREAT", "permit"} {
		if !strings.Contains(says, want) {
			t.Errorf("the verified receipt says %q, lacks %q", says, want)
		}
	}

	// A tampered receipt is not verified: any byte of the leaf, the
	// header or the statement changed, or the proof, index, checkpoint or
	// key. (flip changes one character of a base64 attribute's text.)
	const flip = `const flip = (b64, at) => { const s = atob(b64); const i = at(s); return btoa(s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ 1) + s.slice(i + 1)); };`
	for name, tamper := range map[string]string{
		"leaf seal":         flip + `el.dataset.entry = flip(el.dataset.entry, s => s.indexOf('"seal":"') + 10)`,
		"leaf time":         flip + `el.dataset.entry = flip(el.dataset.entry, s => s.indexOf('"time":"') + 12)`,
		"header commitment": flip + `el.dataset.header = flip(el.dataset.header, s => s.indexOf('"commitment":"') + 20)`,
		"header org":        `el.dataset.header = btoa(atob(el.dataset.header).replace('"org":"patient"', '"org":"hosp-b"'))`,
		"statement body":    `el.dataset.opening = btoa(atob(el.dataset.opening).replace("labs", "imaging"))`,
		"statement grantee": `el.dataset.opening = btoa(atob(el.dataset.opening).replace("hosp-b", "hosp-a"))`,
		"statement salt":    flip + `el.dataset.opening = flip(el.dataset.opening, s => s.indexOf('"salt":"') + 9)`,
		"no opening":        `el.dataset.opening = ""`,
		"proof":             `el.dataset.proof = el.dataset.proof ? el.dataset.proof.split(" ").reverse().map(h => btoa(atob(h).split("").reverse().join(""))).join(" ") : btoa("x".repeat(32))`,
		"index":             `el.dataset.index = String(Number(el.dataset.index) + 1)`,
		"checkpoint":        `el.dataset.checkpoint = el.dataset.checkpoint.replace(/\n([0-9]+)\n/, (m, n) => "\n" + (Number(n) + 1) + "\n")`,
		"key":               `el.dataset.key = el.dataset.key.replace(/\+[0-9a-f]{8}\+/, "+00000000+")`,
	} {
		steps(t, ctx, "tamper "+name,
			chromedp.Navigate(base+"/app/consents/"+id),
			chromedp.WaitVisible(chromedp.CSS(`.receipt[data-verified="ok"]`)),
		)
		state := value(t, ctx, "tamper "+name,
			await[string](`(async () => { const el = document.querySelector(".receipt"); `+tamper+`; await healthgwReceipts.verify(el); return el.dataset.verified; })()`))
		shown := value(t, ctx, "tampered status", chromedp.Text(chromedp.CSS(".receipt .verify-status")))
		if state != "bad" || !strings.Contains(shown, "Not verified") {
			t.Errorf("tampered %s: state %q, shown %q; want not verified", name, state, shown)
		}
		if says := value(t, ctx, "tampered says", chromedp.Evaluate[string](`document.querySelector(".receipt .receipt-says").textContent`)); says != "" {
			t.Errorf("tampered %s: the receipt still says %q", name, says)
		}
	}

	// Hospital B reads the record through the API.
	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusOK {
		t.Fatalf("B reads under consent: %d %s", status, body)
	}
	steps(t, ctx, "access log", chromedp.Navigate(base+"/app/access"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	if txt := pageText(t, ctx); !strings.Contains(txt, "Hospital B") || !strings.Contains(txt, "Allowed") {
		t.Errorf("access log lacks B's read: %s", txt)
	}

	// The patient revokes, with confirmation.
	capture(t, ctx, base, "app-revoke", "/app/consents/"+id+"/revoke")
	steps(t, ctx, "revoke",
		chromedp.Navigate(base+"/app/consents/"+id),
		chromedp.Click(chromedp.CSS(`a.button-danger`)),
		chromedp.WaitVisible(chromedp.CSS("#revoke-confirm")),
		chromedp.Click(chromedp.CSS("#revoke-confirm")),
		chromedp.WaitVisible(chromedp.CSS(`.notice-ok`)),
		poll(`document.querySelectorAll('.receipt[data-verified="ok"]').length === 2`),
	)
	if status, _ := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusNotFound {
		t.Fatalf("B reads after revocation: %d, want 404", status)
	}
	steps(t, ctx, "access log", chromedp.Navigate(base+"/app/access"), chromedp.WaitVisible(chromedp.CSS("table.events")))
	if txt := pageText(t, ctx); !strings.Contains(txt, "Refused") || !strings.Contains(txt, "your consent was withdrawn") {
		t.Errorf("access log lacks B's denied read: %s", txt)
	}
	// An emergency read without consent, flagged on the patient's page.
	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=ETREAT", w.btok, nil,
		"X-Break-Glass-Reason", "unconscious patient in the emergency department"); status != http.StatusOK {
		t.Fatalf("break-glass read: %d %s", status, body)
	}
	capture(t, ctx, base, "app-consents", "/app/consents")
	capture(t, ctx, base, "app-access", "/app/access")

	// A regulator signs in, finds both decisions and verifies the ledger
	// in the browser.
	steps(t, ctx, "console sign-in",
		chromedp.Navigate(base+"/console/"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#org")),
	)
	org := value(t, ctx, "staff org", chromedp.Value(chromedp.CSS("#org")))
	if org != "reg-x" {
		t.Errorf("staff sign-in prefills %q, want the registered regulator reg-x", org)
	}
	steps(t, ctx, "console sign-in", chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")))
	steps(t, ctx, "verify the ledger",
		chromedp.Click(chromedp.CSS("#verify-start")),
		chromedp.WaitVisible(chromedp.CSS(`#ledger-verify[data-verified="ok"]`)),
	)
	size := value(t, ctx, "ledger size", chromedp.Text(chromedp.CSS("#ledger-size")))
	progress := value(t, ctx, "progress", chromedp.Text(chromedp.CSS("#verify-count")))
	if progress == "" || progress != size+" / "+size {
		t.Errorf("verification progress %q, want all of %s entries", progress, size)
	}
	if txt := pageText(t, ctx); !strings.Contains(txt, "Verified: every entry matches the signed checkpoint") {
		t.Errorf("ledger page after verification: %s", txt)
	}
	steps(t, ctx, "audit search",
		chromedp.Navigate(base+"/console/audit"),
		chromedp.SetValue(chromedp.CSS("#f-patient"), "pat-1"),
		chromedp.Click(chromedp.CSS("#audit-search")),
		// The unfiltered page shows an events table too: wait for the
		// search's own page (the form submits with GET) to have loaded.
		pollAcrossNavigation(`new URLSearchParams(location.search).get("patient") === "pat-1" && document.readyState === "complete"`),
		chromedp.WaitVisible(chromedp.CSS("table.events")),
	)
	rows := value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("table.events tbody tr").length`))
	if txt := pageText(t, ctx); rows != 3 || !strings.Contains(txt, "Allowed") || !strings.Contains(txt, "Refused") || !strings.Contains(txt, "Emergency") {
		t.Errorf("audit search for pat-1: %d rows: %s", rows, txt)
	}
	capture(t, ctx, base, "console-ledger", "/console/")
	capture(t, ctx, base, "console-audit", "/console/audit?patient=pat-1")
	capture(t, ctx, base, "console-break-glass", "/console/break-glass")
	capture(t, ctx, base, "console-hospitals", "/console/hospitals")

	// A tampered ledger is not verified: the browser fetches the tiles
	// through a page-level fetch override serving one altered entry.
	steps(t, ctx, "tampered ledger",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")),
	)
	state := value(t, ctx, "tampered ledger", await[string](`(async () => {
			const orig = window.fetch;
			window.fetch = async (u, o) => {
				const r = await orig(u, o);
				if (!String(u).includes("tile/entries/")) return r;
				const b = new Uint8Array(await r.arrayBuffer());
				const i = b.indexOf(0x22, 4); b[i + 1] ^= 1; // flip a bit inside the first entry's JSON text
				return new Response(b, {status: 200});
			};
			await healthgwLedger.run();
			return document.getElementById("ledger-verify").dataset.verified;
		})()`))
	if state != "bad" {
		t.Errorf("tampered tile: verification state %q, want bad", state)
	}
}

// TestBrowserProofs is the eligibility-proof path in a real browser: a
// patient shows the page their credential file (a file upload), pastes
// Insurer V's request, gets the files the page links to, runs the command
// the page shows (the CLI, standing in for the patient's computer), and
// uploads the proof; Insurer V reads the outcome from the API.
func TestBrowserProofs(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setup and proving")
	}
	ctx := newChrome(t)
	w := newProofsWorld(t)
	base := w.url
	browserSignIn(t, ctx, base, "app", "patient", "pat-1")
	capture(t, ctx, base, "app-proofs-empty", "/app/proofs")

	steps(t, ctx, "show a credential",
		chromedp.Navigate(base+"/app/proofs"),
		chromedp.SetUploadFiles(chromedp.CSS("#credential_file"), []string{filepath.Join(w.dir, "my-credential.json")}),
		chromedp.Click(chromedp.CSS("#credential-submit")),
		chromedp.WaitVisible(chromedp.CSS(".card.credential")),
	)
	if txt := pageText(t, ctx); !strings.Contains(txt, "Credential from Hospital A") || !strings.Contains(txt, "1 April 1990") {
		t.Fatalf("proofs page after the upload: %s", txt)
	}
	capture(t, ctx, base, "app-proofs", "/app/proofs")

	chFile := w.challenge(t)
	ch, err := circuits.ParseChallenge(chFile)
	if err != nil {
		t.Fatal(err)
	}
	steps(t, ctx, "check the request",
		chromedp.Navigate(base+"/app/proofs"),
		chromedp.SetValue(chromedp.CSS("#challenge"), string(chFile)),
		chromedp.Click(chromedp.CSS("#request-submit")),
		chromedp.WaitVisible(chromedp.CSS("#ask")),
	)
	if ask := value(t, ctx, "ask", chromedp.Text(chromedp.CSS("#ask"))); ask != "Insurer V asks you to prove that you are at least 18 years old." {
		t.Errorf("the request in words: %q", ask)
	}
	capture(t, ctx, base, "app-proof-request", "/app/proofs/request")

	// The files, fetched through the page's own links: the names the
	// links give them are the names the command uses.
	command := value(t, ctx, "command", chromedp.Text(chromedp.CSS("#prove-command")))
	type link struct {
		Name, Text, Hash string
	}
	for _, id := range []string{"dl-challenge", "dl-jwks", "dl-key"} {
		l := value(t, ctx, "download "+id, await[link](`(async () => {
			const a = document.getElementById("`+id+`");
			const r = await fetch(a.href);
			if (!r.ok) throw new Error(a.href + ": " + r.status);
			const b = await r.arrayBuffer();
			const h = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
			return {name: a.getAttribute("download"), text: a.id === "dl-key" ? "" : new TextDecoder().decode(b),
				hash: Array.from(h, x => x.toString(16).padStart(2, "0")).join("")};
		})()`))
		if l.Name == "" || !strings.Contains(command, " "+l.Name) {
			t.Errorf("%s saves as %q, which the command does not name:\n%s", id, l.Name, command)
		}
		data := []byte(l.Text)
		if id == "dl-key" {
			// The proving key is large: the browser's digest of it is
			// compared with the gateway's key file, which is then used.
			if data, err = os.ReadFile(circuits.ProvingKeyPath(devZKKeys(t), circuits.Age)); err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != l.Hash {
				t.Fatalf("the proving key the page links to is not the gateway's")
			}
		}
		if err := os.WriteFile(filepath.Join(w.dir, l.Name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proveAsShown(t, w.dir, command)

	steps(t, ctx, "send the proof",
		chromedp.Navigate(base+"/app/proofs/request"),
		chromedp.SetUploadFiles(chromedp.CSS("#proof_file"), []string{filepath.Join(w.dir, "proof.json")}),
		chromedp.Click(chromedp.CSS("#answer-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#answer-result[data-valid="true"]`)),
	)
	if txt := pageText(t, ctx); !strings.Contains(txt, "Proof accepted") || !strings.Contains(txt, "Insurer V can now see that you are at least 18 years old.") {
		t.Errorf("after sending the proof: %s", txt)
	}
	capture(t, ctx, base, "app-proof-answered", "/app/proofs/request")
	status, body := w.do("GET", "/v1/proofs/challenges/"+ch.ID, w.vtok, nil)
	if st := decode[challengeStatus](t, body); status != http.StatusOK || st.Status != "answered" || !st.Result.Valid || st.Result.Issuer != "hosp-a" {
		t.Errorf("Insurer V reads the outcome: %d %s", status, body)
	}
}

// TestBrowserWitnesses: the console's ledger status with two witnesses
// and a threshold of two; the in-browser verification checks both
// cosignatures (a forged one is caught), and once a witness is down the
// threshold is not met and the verification fails.
func TestBrowserWitnesses(t *testing.T) {
	ctx := newChrome(t)
	ww := newWitnessedWorld(t)
	base := ww.url
	steps(t, ctx, "console sign-in",
		chromedp.Navigate(base+"/console/"),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#org")),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")),
	)
	if txt := value(t, ctx, "threshold", chromedp.Text(chromedp.CSS("#witness-threshold"))); !strings.Contains(txt, "2 of 2 witnesses cosigned; 2 required: met") {
		t.Errorf("threshold: %q", txt)
	}
	steps(t, ctx, "verify with witnesses",
		chromedp.Click(chromedp.CSS("#verify-start")),
		chromedp.WaitVisible(chromedp.CSS(`#ledger-verify[data-verified="ok"]`)),
	)
	if n := value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll('tr.witness[data-cosig="ok"]').length`)); n != 2 {
		t.Errorf("%d witness cosignatures verified in the browser, want 2", n)
	}
	if txt := value(t, ctx, "witness result", chromedp.Text(chromedp.CSS("#witness-result"))); !strings.Contains(txt, "2 of 2 valid cosignatures; 2 required: met") {
		t.Errorf("witness result: %q", txt)
	}
	capture(t, ctx, base, "console-witnesses", "/console/", runLedgerVerification())

	// A forged cosignature (one bit of witness-2's signature flipped in
	// the checkpoint the browser fetches) is caught.
	steps(t, ctx, "reload", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")))
	state := value(t, ctx, "forged cosignature", await[[]string](`(async () => {
			const orig = window.fetch;
			window.fetch = async (u, o) => {
				const r = await orig(u, o);
				if (!String(u).endsWith("/checkpoint")) return r;
				const lines = (await r.text()).split("\n");
				const i = lines.findIndex(l => l.startsWith("\u2014 witness-2.example "));
				const sp = lines[i].lastIndexOf(" ");
				const sig = Uint8Array.from(atob(lines[i].slice(sp + 1)), c => c.charCodeAt(0));
				sig[40] ^= 1;
				lines[i] = lines[i].slice(0, sp + 1) + btoa(String.fromCharCode(...sig));
				return new Response(lines.join("\n"), {status: 200});
			};
			await healthgwLedger.run();
			return [document.getElementById("ledger-verify").dataset.verified,
				...Array.from(document.querySelectorAll("tr.witness"), r => r.dataset.cosig)];
		})()`))
	if strings.Join(state, " ") != "bad ok bad" {
		t.Errorf("forged cosignature: verification, witness 1, witness 2 = %v; want bad ok bad", state)
	}
	if txt := value(t, ctx, "ledger result", chromedp.Text(chromedp.CSS("#verify-result"))); !strings.Contains(txt, "too few valid witness cosignatures") {
		t.Errorf("forged cosignature: %q", txt)
	}

	// Witness 2 goes down: the next checkpoint has one cosignature.
	ww.w2.srv.Close()
	ww.registerNamed("hosp-c", "Hospital C", auth.KindHospital)
	ww.submit(1)
	steps(t, ctx, "verify with one witness down",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")),
		chromedp.Click(chromedp.CSS("#verify-start")),
		chromedp.WaitVisible(chromedp.CSS(`#ledger-verify[data-verified="bad"]`)),
	)
	if txt := value(t, ctx, "threshold", chromedp.Text(chromedp.CSS("#witness-threshold"))); !strings.Contains(txt, "1 of 2 witnesses cosigned; 2 required: not met") {
		t.Errorf("threshold with one witness down: %q", txt)
	}
	if txt := value(t, ctx, "witness result", chromedp.Text(chromedp.CSS("#witness-result"))); !strings.Contains(txt, "1 of 2 valid cosignatures; 2 required: not met") {
		t.Errorf("witness result with one witness down: %q", txt)
	}
	capture(t, ctx, base, "console-witnesses-short", "/console/", runLedgerVerification())
}

// runLedgerVerification clicks "Verify the ledger" and waits for its end.
func runLedgerVerification() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, a := range []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(chromedp.CSS("#verify-start:enabled")),
			chromedp.Click(chromedp.CSS("#verify-start")),
			poll(`["ok", "bad"].includes(document.getElementById("ledger-verify").dataset.verified)`),
		} {
			if _, err := a(ctx, t); err != nil {
				return err
			}
		}
		return nil
	})
}
