package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

// postFile posts a multipart form (as the pages' upload forms do): the
// fields, and one file under fileField unless name is "".
func (b *browser) postFile(path string, fields url.Values, fileField, name string, data []byte) (int, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	if name != "" {
		fw, err := mw.CreateFormFile(fileField, name)
		if err != nil {
			b.t.Fatal(err)
		}
		fw.Write(data)
	}
	if err := mw.Close(); err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(b.t.Context(), "POST", b.base+path, &body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// proofsWorld is the web world with zero-knowledge keys, a verifier
// (Insurer V) and a patient holding an over-18 credential from Hospital
// A (its secret file on the patient's computer, dir).
type proofsWorld struct {
	*webWorld
	vtok     string
	dir      string // the patient's folder
	credFile []byte
}

func newProofsWorld(t *testing.T, mutate ...func(*serveConfig)) *proofsWorld {
	t.Helper()
	keys := devZKKeys(t)
	g := newTestGateway(t, append([]func(*serveConfig){func(c *serveConfig) { c.ZKKeys = keys }}, mutate...)...)
	a := g.registerNamed("hosp-a", "Hospital A", auth.KindHospital)
	b := g.registerNamed("hosp-b", "Hospital B", auth.KindHospital)
	g.registerNamed("reg-x", "Health Regulator X", auth.KindRegulator)
	v := g.registerNamed("ins-v", "Insurer V", auth.KindVerifier)
	w := &proofsWorld{webWorld: &webWorld{testGateway: g, btok: g.token(b, "")}, vtok: g.token(v, ""), dir: t.TempDir()}
	w.rec = g.putRecord(g.token(a, ""), "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	secret, err := credential.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := credential.MarshalSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "secret.json"), sb, 0o600); err != nil {
		t.Fatal(err)
	}
	status, body := g.do("POST", "/v1/credentials", g.token(a, ""), map[string]any{
		"holder":     credential.FormatElement(secret.Commitment()),
		"attributes": map[string]string{"birth_date": "1990-04-01", "hba1c": "7.1", "sex": "female"},
		"expires":    time.Now().AddDate(1, 0, 0).UTC().Format(time.DateOnly),
	})
	if status != http.StatusCreated {
		t.Fatalf("issue credential: %d %s", status, body)
	}
	w.credFile = body
	if err := os.WriteFile(filepath.Join(w.dir, "my-credential.json"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// challenge is Insurer V asking for a proof of "over 18".
func (w *proofsWorld) challenge(t *testing.T) []byte {
	t.Helper()
	status, body := w.do("POST", "/v1/proofs/challenges", w.vtok, map[string]any{"statement": "age", "params": over18})
	if status != http.StatusCreated {
		t.Fatalf("challenge: %d %s", status, body)
	}
	return body
}

// challengeStatus is the body of GET /v1/proofs/challenges/{id}.
type challengeStatus struct {
	Status string       `json:"status"`
	Result verifyResult `json:"result"`
}

var commandRe = regexp.MustCompile(`(?s)<pre class="raw command" id="prove-command">(.*?)</pre>`)

// proveAsShown runs the command the request page shows, as the patient
// would in their folder (file arguments are taken relative to dir), and
// returns the proof it writes.
func proveAsShown(t *testing.T, dir, command string) []byte {
	t.Helper()
	fields := strings.Fields(strings.ReplaceAll(command, "\\\n", " "))
	if len(fields) < 3 || fields[0] != "healthgw" || fields[1] != "zk" || fields[2] != "prove" {
		t.Fatalf("the page's command is not healthgw zk prove: %q", command)
	}
	args := fields[1:]
	var out string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--challenge", "--gateway-key", "--proving-key", "--credential", "--secret", "--out":
			if filepath.IsAbs(args[i+1]) || strings.Contains(args[i+1], "/") {
				t.Errorf("%s %s is not a file in the patient's folder", args[i], args[i+1])
			}
			if args[i] == "--out" {
				out = args[i+1]
			}
			args[i+1] = filepath.Join(dir, args[i+1])
		}
	}
	if out == "" {
		t.Fatalf("the page's command writes no proof file: %q", command)
	}
	if _, stderr, err := runCLI(t, args...); err != nil {
		t.Fatalf("healthgw %s: %v\n%s", strings.Join(fields[1:], " "), err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, out))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// download fetches path with the patient's session into the patient's
// folder as name, checking the name the server gives it.
func (b *browser) download(path, dir, name string) {
	b.t.Helper()
	status, body := b.get(path)
	if status != http.StatusOK {
		b.t.Fatalf("download %s: %d %s", path, status, body)
	}
	if cd := b.last.Header.Get("Content-Disposition"); name != "" && !strings.Contains(cd, `filename="`+name+`"`) && !strings.HasPrefix(path, "/.well-known/") {
		b.t.Errorf("download %s: Content-Disposition %q, want filename %q", path, cd, name)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

// TestWebProofs is the eligibility-proof path as a patient takes it,
// without a browser: show a credential, check Insurer V's request, get
// the files and the command, prove on "their computer" (the CLI), send
// the proof; Insurer V reads the outcome from the API.
func TestWebProofs(t *testing.T) {
	if testing.Short() {
		t.Skip("Groth16 setup and proving")
	}
	w := newProofsWorld(t)
	p := newBrowser(t, w.url)
	p.signIn("app", url.Values{"patient": {"pat-1"}})
	status, page := p.get("/app/proofs")
	if status != http.StatusOK || !strings.Contains(page, "You have not shown this page any credential yet.") || !strings.Contains(page, `href="/app/proofs" aria-current="page"`) {
		t.Fatalf("proofs page: %d %s", status, page)
	}
	csrf := csrfOf(t, page)

	// The credential, uploaded: what it says, in words.
	status, page = p.postFile("/app/proofs/credentials", url.Values{"csrf": {csrf}}, "credential_file", "my-credential.json", w.credFile)
	for _, want := range []string{"The credential&#39;s signature is valid.", "Credential from Hospital A", "Date of birth", "1 April 1990", "HbA1c", "7.1 %", "female", "Valid until"} {
		if status != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("after adding the credential: %d, page lacks %q", status, want)
		}
	}
	if strings.Contains(page, "Main diagnosis") {
		t.Errorf("an attribute the credential does not assert is shown")
	}
	// Altered, or not a credential at all: refused with a reason, nothing kept.
	altered := regexp.MustCompile(`"birth_date": "[0-9]+"`).ReplaceAll(w.credFile, []byte(`"birth_date": "1"`))
	for name, b := range map[string][]byte{"altered": altered, "not one": []byte(`{"hello": 1}`)} {
		status, page := p.post("/app/proofs/credentials", url.Values{"csrf": {csrf}, "credential": {string(b)}})
		if status != http.StatusBadRequest || !strings.Contains(page, "This is not a credential file, or it was changed") || strings.Count(page, `class="card credential"`) != 1 {
			t.Errorf("%s credential: %d, want 400 with the reason and the one good credential", name, status)
		}
	}

	// Insurer V's request, pasted: checked and said plainly.
	chFile := w.challenge(t)
	ch, err := circuits.ParseChallenge(chFile)
	if err != nil {
		t.Fatal(err)
	}
	status, page = p.post("/app/proofs/request", url.Values{"csrf": {csrf}, "challenge": {string(chFile)}})
	if status != http.StatusOK || !strings.Contains(page, "Insurer V asks you to prove that you are at least 18 years old.") {
		t.Fatalf("request page: %d %s", status, page)
	}
	for _, want := range []string{"Can answer it: it shows that you are at least 18 years old", "Which organisation issued your credential.", "Checked"} {
		if !strings.Contains(page, want) {
			t.Errorf("request page lacks %q", want)
		}
	}
	m := commandRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no command on the request page:\n%s", page)
	}
	command := html.UnescapeString(m[1])
	for _, want := range []string{"--verifier ins-v", "--credential my-credential.json", "--challenge healthgw-challenge-" + ch.ID + ".json", "--proving-key healthgw-age.pk"} {
		if !strings.Contains(command, want) {
			t.Errorf("command lacks %q:\n%s", want, command)
		}
	}

	// The patient saves the files the page links to and runs the command.
	p.download("/app/proofs/request/challenge.json", w.dir, "healthgw-challenge-"+ch.ID+".json")
	p.download("/.well-known/jwks.json", w.dir, "healthgw-jwks.json")
	p.download("/app/proofs/keys/age", w.dir, "healthgw-age.pk")
	proof := proveAsShown(t, w.dir, command)

	// Insurer V has not been answered yet.
	status, body := w.do("GET", "/v1/proofs/challenges/"+ch.ID, w.vtok, nil)
	if got := decode[map[string]any](t, body); status != http.StatusOK || got["status"] != "open" {
		t.Fatalf("status before the answer: %d %s", status, body)
	}
	// A proof of another request is refused and uses nothing up.
	other := w.challenge(t)
	och, _ := circuits.ParseChallenge(other)
	if err := os.WriteFile(filepath.Join(w.dir, "healthgw-challenge-"+och.ID+".json"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := proveAsShown(t, w.dir, strings.ReplaceAll(strings.ReplaceAll(command, ch.ID, och.ID), "proof.json", "other-proof.json"))
	before := w.size()
	status, page = p.postFile("/app/proofs/request/answer", url.Values{"csrf": {csrf}}, "proof_file", "other-proof.json", wrong)
	if status != http.StatusBadRequest || !strings.Contains(page, "This proof answers another request.") || w.size() != before {
		t.Errorf("a proof of another request: %d, ledger %d → %d", status, before, w.size())
	}

	// The proof, uploaded: verified for Insurer V.
	status, page = p.postFile("/app/proofs/request/answer", url.Values{"csrf": {csrf}}, "proof_file", "proof.json", proof)
	if status != http.StatusOK || !strings.Contains(page, "Proof accepted") || !strings.Contains(page, "Insurer V can now see that you are at least 18 years old.") {
		t.Fatalf("answer: %d %s", status, page)
	}
	status, body = w.do("GET", "/v1/proofs/challenges/"+ch.ID, w.vtok, nil)
	st := decode[challengeStatus](t, body)
	if status != http.StatusOK || st.Status != "answered" || !st.Result.Valid || st.Result.Issuer != "hosp-a" || st.Result.Statement != "age" || st.Result.Nullifier == "" {
		t.Fatalf("Insurer V reads the outcome: %d %s", status, body)
	}
	// Sending it again changes nothing: the request is answered.
	status, page = p.postFile("/app/proofs/request/answer", url.Values{"csrf": {csrf}}, "proof_file", "proof.json", proof)
	if status != http.StatusConflict || !strings.Contains(page, "already been answered") {
		t.Errorf("second answer: %d", status)
	}
	// Another verifier cannot read Insurer V's outcome.
	v2 := w.token(w.registerNamed("ins-w", "Insurer W", auth.KindVerifier), "")
	if status, _ := w.do("GET", "/v1/proofs/challenges/"+ch.ID, v2, nil); status != http.StatusNotFound {
		t.Errorf("another verifier reads the outcome: %d, want 404", status)
	}
	// The answered request cannot be started again.
	status, page = p.post("/app/proofs/request", url.Values{"csrf": {csrf}, "challenge": {string(chFile)}})
	if status != http.StatusBadRequest || !strings.Contains(page, "This request has already been answered.") {
		t.Errorf("an answered request again: %d", status)
	}
	w.verifyLedger()
}

// TestWebProofsSecurity: every proofs form needs the CSRF token; another
// patient sees none of a patient's credentials or requests; a request
// changed or re-addressed by a verifier is refused.
func TestWebProofsSecurity(t *testing.T) {
	w := newProofsWorld(t)
	p1 := newBrowser(t, w.url)
	p1.signIn("app", url.Values{"patient": {"pat-1"}})
	_, page := p1.get("/app/proofs")
	csrf := csrfOf(t, page)
	status, page := p1.postFile("/app/proofs/credentials", url.Values{"csrf": {csrf}}, "credential_file", "my-credential.json", w.credFile)
	if status != http.StatusOK || !strings.Contains(page, "Credential from Hospital A") {
		t.Fatalf("add credential: %d", status)
	}
	credID := regexp.MustCompile(`/app/proofs/credentials/([0-9a-f]+)/remove`).FindStringSubmatch(page)
	if credID == nil {
		t.Fatal("no remove form")
	}
	chFile := w.challenge(t)
	if status, _ := p1.post("/app/proofs/request", url.Values{"csrf": {csrf}, "challenge": {string(chFile)}}); status != http.StatusOK {
		t.Fatalf("request: %d", status)
	}

	t.Run("CSRF", func(t *testing.T) {
		wrong := "x" + csrf[1:]
		if csrf[0] == 'x' { // a token that starts with x would be the right one
			wrong = "y" + csrf[1:]
		}
		for _, path := range []string{"/app/proofs/credentials", "/app/proofs/credentials/" + credID[1] + "/remove", "/app/proofs/request",
			"/app/proofs/request/answer", "/app/proofs/request/forget"} {
			for name, token := range map[string][]string{"missing": nil, "wrong": {wrong}} {
				status, _ := p1.postFile(path, url.Values{"csrf": token, "challenge": {string(chFile)}, "credential": {string(w.credFile)}}, "", "", nil)
				if status != http.StatusForbidden {
					t.Errorf("POST %s with a %s token: %d, want 403", path, name, status)
				}
			}
		}
		if _, page := p1.get("/app/proofs/request"); !strings.Contains(page, "Insurer V asks you") {
			t.Errorf("a refused form changed the request")
		}
	})

	t.Run("another patient", func(t *testing.T) {
		p2 := newBrowser(t, w.url)
		p2.signIn("app", url.Values{"patient": {"pat-2"}})
		_, page := p2.get("/app/proofs")
		if strings.Contains(page, "Hospital A") || strings.Contains(page, credID[1]) || strings.Contains(page, `id="current-request"`) {
			t.Errorf("pat-2 sees pat-1's credential or request")
		}
		if status, _ := p2.get("/app/proofs/request/challenge.json"); status != http.StatusNotFound {
			t.Errorf("pat-2 downloads pat-1's request: %d, want 404", status)
		}
		if status, _ := p2.get("/app/proofs/request"); status != http.StatusOK || !strings.HasSuffix(p2.last.Request.URL.Path, "/app/proofs") {
			t.Errorf("pat-2's request page: %d at %s, want their own (empty) proofs page", status, p2.last.Request.URL)
		}
		if status, _ := p2.post("/app/proofs/credentials/"+credID[1]+"/remove", url.Values{"csrf": {csrfOf(t, page)}}); status != http.StatusNotFound {
			t.Errorf("pat-2 removes pat-1's credential: %d, want 404", status)
		}
		if _, page := p1.get("/app/proofs"); !strings.Contains(page, "Credential from Hospital A") {
			t.Errorf("pat-1's credential is gone")
		}
	})

	t.Run("signed out", func(t *testing.T) {
		anon := newBrowser(t, w.url)
		anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for _, path := range []string{"/app/proofs", "/app/proofs/request", "/app/proofs/request/challenge.json", "/app/proofs/keys/age"} {
			if status, _ := anon.get(path); status != http.StatusSeeOther || anon.last.Header.Get("Location") != "/app/login" {
				t.Errorf("GET %s signed out: %d %s", path, status, anon.last.Header.Get("Location"))
			}
		}
	})

	t.Run("changed requests", func(t *testing.T) {
		s := string(w.challenge(t))
		ch, _ := circuits.ParseChallenge([]byte(s))
		readdressed := ch
		readdressed.Verifier, readdressed.Scope = "ins-w", circuits.ScopeFor("ins-w")
		rb, _ := circuits.MarshalChallenge(readdressed)
		for name, tt := range map[string]struct{ file, want string }{
			"weaker policy": {regexp.MustCompile(`"cutoff": "[0-9-]+"`).ReplaceAllString(s, `"cutoff": "2020-01-01"`), "was not issued through this gateway, or it was changed"},
			"re-addressed":  {string(rb), "was not issued through this gateway, or it was changed"},
			"not a request": {`{"hello": "world"}`, "This is not a request file"},
			"empty":         {"", "Choose a file or paste its contents."},
		} {
			status, page := p1.post("/app/proofs/request", url.Values{"csrf": {csrf}, "challenge": {tt.file}})
			if status != http.StatusBadRequest || !strings.Contains(page, tt.want) {
				t.Errorf("%s: %d, want 400 with %q", name, status, tt.want)
			}
		}
	})
}
