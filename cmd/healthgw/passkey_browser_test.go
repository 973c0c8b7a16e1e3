package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// TestBrowserPasskey: a patient registers a passkey with Chromium's
// virtual authenticator, grants Hospital B lab results and signs the grant
// with the passkey; the app shows it signed; a consent change the gateway
// appends in the patient's name without the passkey (a forged grant, a
// forged revocation of the signed grant) is ignored; the patient's signed
// revocation takes effect.
func TestBrowserPasskey(t *testing.T) {
	ctx := newChrome(t)
	w := newWebWorld(t, func(c *serveConfig) { c.BaseURL = localhostBase })
	base := w.url
	if !strings.HasPrefix(base, "http://localhost:") {
		t.Fatalf("base URL %s: WebAuthn needs localhost", base)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	}); err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	browserSignIn(t, ctx, base, "app", "patient", "pat-1")

	// An unsigned grant before any passkey: accepted, marked not signed.
	now := time.Now().UTC()
	steps(t, ctx, "grant before a passkey",
		chromedp.Navigate(base+"/app/consents/new?q=Hospital+A"),
		chromedp.Click(chromedp.CSS(`input[name="org"][value="hosp-a"]`)),
		chromedp.Click(chromedp.CSS(`input[name="category"][value="imaging"]`)),
		chromedp.Click(chromedp.CSS("#grant-submit")),
		chromedp.WaitVisible(chromedp.CSS(`.receipt[data-verified="ok"]`)),
	)
	if txt := pageText(t, ctx); !strings.Contains(txt, "not signed") {
		t.Fatalf("unsigned grant page: %s", txt)
	}

	// Register a passkey.
	steps(t, ctx, "register a passkey",
		chromedp.Navigate(base+"/app/passkey"),
		chromedp.WaitVisible(chromedp.CSS("#no-passkeys")),
		chromedp.Click(chromedp.CSS("#passkey-register-button")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys")),
	)
	if txt := pageText(t, ctx); !strings.Contains(txt, "Your passkey is registered.") {
		t.Fatalf("passkey page: %s", txt)
	}
	capture(t, ctx, base, "app-passkey", "/app/passkey") // both languages, both widths, axe-core
	ps := w.pseud.Pseudonym("pat-1")
	ks, err := w.consent.Passkeys(t.Context(), ps)
	if err != nil || len(ks) != 1 || ks[0].RPID != "localhost" || ks[0].Origin != base {
		t.Fatalf("registered passkeys: %+v, %v", ks, err)
	}

	// Grant Hospital B lab results: the app asks for the passkey's
	// signature over the entry's commitment.
	steps(t, ctx, "grant, signed",
		chromedp.Navigate(base+"/app/consents/new?q=Hospital+B"),
		chromedp.Click(chromedp.CSS(`input[name="org"][value="hosp-b"]`)),
		chromedp.Click(chromedp.CSS(`input[name="category"][value="labs"]`)),
		chromedp.Click(chromedp.CSS("#grant-submit")),
		chromedp.WaitVisible(chromedp.CSS("#passkey-sign-button")),
	)
	checkA11y(t, ctx, "sign page")
	steps(t, ctx, "sign the grant",
		chromedp.Click(chromedp.CSS("#passkey-sign-button")),
		chromedp.WaitVisible(chromedp.CSS(`.receipt[data-verified="ok"]`)),
	)
	loc := value(t, ctx, "location", chromedp.Location())
	id := strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], base+"/app/consents/")
	if txt := pageText(t, ctx); !strings.Contains(txt, "signed with your passkey") || !strings.Contains(txt, "Hospital B may read your lab results") {
		t.Fatalf("signed grant page: %s", txt)
	}
	g, err := w.consent.Grant(t.Context(), id)
	if err != nil || !g.Signed || g.Revoked {
		t.Fatalf("grant %s: %+v, %v", id, g, err)
	}
	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusOK {
		t.Fatalf("B reads under the signed consent: %d %s", status, body)
	}

	// The gateway forges consent changes in the patient's name, without
	// the passkey: a grant, and a revocation of the signed grant. The
	// projection ignores both.
	forged := consent.NewID()
	forge := func(body any) {
		t.Helper()
		e, err := ledger.NewEntry(ledger.PatientOrg(ps), body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.node.Append(t.Context(), e); err != nil {
			t.Fatalf("forge: %v", err)
		}
	}
	forge(&ledger.ConsentGranted{ConsentID: forged, Patient: ps, Grantee: ledger.Grantee{Org: "hosp-b"}, Decision: "permit",
		Actions: []string{"read"}, Categories: []string{"mental-health"}, Purposes: []string{"TREAT"},
		NotBefore: now.Truncate(time.Second), NotAfter: now.Add(24 * time.Hour).Truncate(time.Second)})
	forge(&ledger.ConsentRevoked{ConsentID: id, Patient: ps})
	size, err := w.node.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.follower.Sync(t.Context(), size); err != nil {
		t.Fatal(err)
	}
	if _, err := w.consent.Grant(t.Context(), forged); err == nil {
		t.Errorf("the forged grant %s counts", forged)
	}
	if g, err := w.consent.Grant(t.Context(), id); err != nil || g.Revoked {
		t.Errorf("after the forged revocation, grant %s: revoked %v, %v", id, g.Revoked, err)
	}
	steps(t, ctx, "consents after the forgery", chromedp.Navigate(base+"/app/consents"), chromedp.WaitReady(chromedp.CSS("footer")))
	txt := pageText(t, ctx)
	if strings.Contains(txt, "mental health") || !strings.Contains(txt, "signed with your passkey") || !strings.Contains(txt, "not signed") {
		t.Errorf("consent list after the forgery:\n%s", txt)
	}
	if status, body := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusOK {
		t.Errorf("B reads after the forged revocation: %d %s", status, body)
	}
	// The API refuses an unsigned change for a patient with a passkey.
	if _, _, err := w.access.Revoke(t.Context(), ps, id); err == nil {
		t.Errorf("unsigned revocation through the service accepted")
	}

	// The patient revokes in the app, signed: B is denied.
	steps(t, ctx, "revoke, signed",
		chromedp.Navigate(base+"/app/consents/"+id+"/revoke"),
		chromedp.Click(chromedp.CSS("#revoke-confirm")),
		chromedp.WaitVisible(chromedp.CSS("#passkey-sign-button")),
		chromedp.Click(chromedp.CSS("#passkey-sign-button")),
		chromedp.WaitVisible(chromedp.CSS(`.receipt[data-verified="ok"]`)),
	)
	if g, err := w.consent.Grant(t.Context(), id); err != nil || !g.Revoked {
		t.Fatalf("after the signed revocation, grant %s: revoked %v, %v", id, g.Revoked, err)
	}
	// A denied read is a 404, as for a record that does not exist.
	if status, _ := w.do("GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", w.btok, nil); status != http.StatusNotFound {
		t.Errorf("B reads after the signed revocation: %d, want 404", status)
	}
	if txt := pageText(t, ctx); !strings.Contains(txt, "Your consent has been withdrawn.") {
		t.Errorf("after the signed revocation: %s", txt)
	}
}
