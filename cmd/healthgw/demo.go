package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	gnarklog "github.com/consensys/gnark/logger"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/internal/truncate"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/verify"
)

// cmdDemo tells the product's story against a running gateway, with real
// calls, printing each step; it fails (non-zero exit) the moment a step
// does not behave as the story says.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo")
	base := fs.String("url", "http://127.0.0.1:8080", "gateway URL")
	var sf storeFlags
	sf.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	gnarklog.Disable() // the patient-side prover would log to stdout
	d := &demo{e: e, base: strings.TrimRight(*base, "/"), sf: sf, client: &http.Client{Timeout: 30 * time.Second}}
	return d.run(ctx)
}

type demo struct {
	e      *env
	base   string
	sf     storeFlags
	client *http.Client
	step   int
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.e.stdout, "\n%2d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, "    %s\n", fmt.Sprintf(format, args...))
}

// call sends a JSON request and checks the status.
func (d *demo) call(ctx context.Context, method, path, token string, body any, want int, out any, hdr ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is the gateway running? start it with `make run`)", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: got %d, want %d: %s", method, path, resp.StatusCode, want, truncate.String(string(b), 300))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// orgToken registers a fresh key for an org and exchanges an assertion.
func (d *demo) orgToken(ctx context.Context, dir string, o auth.Org) (string, error) {
	kg, err := newKeygen(o, dir, "ES256")
	if err != nil {
		return "", err
	}
	r, err := openRegistrar(ctx, d.sf)
	if err != nil {
		return "", err
	}
	quiet := &env{getenv: d.e.getenv, stdout: io.Discard, stderr: io.Discard}
	err = kg.run(ctx, quiet, r.app, r.sync)
	if cerr := r.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	key, err := auth.ReadPrivateKey(kg.sigPath)
	if err != nil {
		return "", err
	}
	return d.exchange(ctx, key, o.ID)
}

func (d *demo) exchange(ctx context.Context, key jwk.Key, org string) (string, error) {
	as, err := auth.NewClientAssertion(key, org, d.base+auth.TokenPath, time.Now(), 0)
	if err != nil {
		return "", err
	}
	tr, err := exchangeAssertion(ctx, d.client, d.base+auth.TokenPath, as, "")
	if err != nil {
		return "", err
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("token for %s: %s %s", org, tr.Error, tr.ErrorDescription)
	}
	return tr.AccessToken, nil
}

func (d *demo) run(ctx context.Context) error {
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	run := hex.EncodeToString(suffix[:])
	patient := "demo-patient-" + run
	dir, err := os.MkdirTemp("", "healthgw-demo-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(d.e.stdout, "healthgw demo against %s (data directory %s)\n", d.base, d.sf.data)

	d.say("Register two hospitals and a regulator (org.registered entries on the ledger)")
	tokens := map[string]string{}
	for _, o := range []auth.Org{
		{ID: "demo-hosp-a", Name: "Demo Hospital A", Kind: auth.KindHospital},
		{ID: "demo-hosp-b", Name: "Demo Hospital B", Kind: auth.KindHospital},
		{ID: "demo-regulator", Name: "Demo Health Regulator", Kind: auth.KindRegulator},
	} {
		tok, err := d.orgToken(ctx, dir, o)
		if err != nil {
			return fmt.Errorf("register %s: %w", o.ID, err)
		}
		tokens[o.ID] = tok
		d.detail("%-15s %-9s registered; access token issued", o.ID, o.Kind)
	}
	a, b, reg := tokens["demo-hosp-a"], tokens["demo-hosp-b"], tokens["demo-regulator"]
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(d.sf.data))
	if err != nil {
		return err
	}
	ptok, err := idp.Mint(patient, d.base, time.Now(), 15*time.Minute)
	if err != nil {
		return err
	}

	d.say("Hospital A stores a lab result (HbA1c) for patient %s", patient)
	var rec struct {
		ID          string `json:"id"`
		Commitment  string `json:"commitment"`
		LedgerIndex uint64 `json:"ledger_index"`
	}
	obs := json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}]},"valueQuantity":{"value":7.1,"unit":"%"}}`)
	if err := d.call(ctx, "POST", "/v1/records", a, map[string]any{"patient": patient, "category": "labs", "content_type": "application/fhir+json", "content": obs}, 201, &rec); err != nil {
		return err
	}
	d.detail("record %s encrypted at rest; ledger index %d holds only its commitment %s…", rec.ID, rec.LedgerIndex, rec.Commitment[:16])
	read := "/v1/records/" + rec.ID + "?purpose=TREAT"

	d.say("Hospital B asks to read it for treatment: denied (looks exactly like a missing record)")
	if err := d.call(ctx, "GET", read, b, nil, 404, nil); err != nil {
		return err
	}
	d.detail("404, and the deny is on the ledger")

	d.say("The patient grants Hospital B access to labs for treatment")
	var grant struct {
		Consent struct {
			ID string `json:"id"`
		} `json:"consent"`
		Receipt struct {
			Index    uint64 `json:"index"`
			TreeSize uint64 `json:"tree_size"`
		} `json:"receipt"`
	}
	if err := d.call(ctx, "POST", "/v1/consents", ptok, map[string]any{"grantee": map[string]string{"org": "demo-hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}, 201, &grant); err != nil {
		return err
	}
	d.detail("consent %s; receipt: entry %d proven in a signed checkpoint of size %d", grant.Consent.ID, grant.Receipt.Index, grant.Receipt.TreeSize)

	d.say("Hospital B reads the lab result")
	var got struct {
		Content json.RawMessage `json:"content"`
	}
	if err := d.call(ctx, "GET", read, b, nil, 200, &got); err != nil {
		return err
	}
	d.detail("permitted; the access was logged durably before the record was decrypted (%d bytes)", len(got.Content))

	d.say("The patient revokes the consent")
	if err := d.call(ctx, "POST", "/v1/consents/"+grant.Consent.ID+"/revoke", ptok, nil, 200, nil); err != nil {
		return err
	}

	d.say("Hospital B tries again: denied on the very next request")
	if err := d.call(ctx, "GET", read, b, nil, 404, nil); err != nil {
		return err
	}

	d.say("The patient reads their access log")
	var log struct {
		Events []struct {
			LedgerIndex uint64    `json:"ledger_index"`
			Time        time.Time `json:"time"`
			Requester   string    `json:"requester"`
			Purpose     string    `json:"purpose"`
			Decision    string    `json:"decision"`
			Reason      string    `json:"reason"`
		} `json:"events"`
	}
	if err := d.call(ctx, "GET", "/v1/me/access-log", ptok, nil, 200, &log); err != nil {
		return err
	}
	for _, ev := range log.Events {
		d.detail("#%-5d %s  %-12s %-6s %-7s %s", ev.LedgerIndex, ev.Time.Format(time.TimeOnly), ev.Requester, ev.Purpose, ev.Decision, ev.Reason)
	}
	if len(log.Events) != 3 {
		return fmt.Errorf("the access log has %d events, want 3 (deny, permit, deny)", len(log.Events))
	}

	d.say("The regulator lists the access events for this patient")
	if err := d.call(ctx, "GET", "/v1/audit/events?patient="+patient, reg, nil, 200, &log); err != nil {
		return err
	}
	d.detail("%d events, each with its ledger index for an inclusion proof", len(log.Events))

	d.say("The regulator verifies the whole ledger offline (healthgw ledger verify)")
	vkey, err := os.ReadFile(filepath.Join(d.sf.data, checkpointKeyFile+ledger.VerifierKeySuffix))
	if err != nil {
		return fmt.Errorf("checkpoint verifier key: %w", err)
	}
	v, err := ledger.ParseVerifierKey(strings.TrimSpace(string(vkey)))
	if err != nil {
		return err
	}
	res, err := verify.Remote(ctx, d.base+"/ledger/", d.client, verify.Options{Verifier: v})
	if err != nil {
		var f *verify.Failure
		if errors.As(err, &f) {
			return fmt.Errorf("LEDGER VERIFICATION FAILED: %w", err)
		}
		return err
	}
	d.detail("OK: %d entries replayed, root matches checkpoint of size %d signed by %s", res.Entries, res.Checkpoint.Size, v.Name())
	if err := d.eligibility(ctx, dir, a); err != nil {
		return err
	}
	fmt.Fprintln(d.e.stdout, "\nThe story holds: consent decides, every decision is on the ledger, the ledger verifies,")
	fmt.Fprintln(d.e.stdout, "and eligibility is proven without disclosure and cannot be replayed.")
	return nil
}

// eligibility is the zero-knowledge part of the story: hospital A issues a
// credential, the patient proves "over 18" to an insurer, a replay is
// refused.
func (d *demo) eligibility(ctx context.Context, dir, hospital string) error {
	d.say("An insurer (a verifier) registers; it asks for proof that the patient is over 18")
	ins, err := d.orgToken(ctx, dir, auth.Org{ID: "demo-insurer", Name: "Demo Insurer", Kind: auth.KindVerifier})
	if err != nil {
		return err
	}
	cutoff := time.Now().UTC().AddDate(-18, 0, 0).Format(time.DateOnly)
	var chBody []byte
	for start := time.Now(); ; {
		status, body, err := d.raw(ctx, "POST", "/v1/proofs/challenges", ins, map[string]any{
			"statement": "age", "params": map[string]string{"attribute": "birth_date", "cutoff": cutoff},
		})
		if err != nil {
			return err
		}
		if status == http.StatusCreated {
			chBody = body
			break
		}
		if status != http.StatusServiceUnavailable || time.Since(start) > 3*time.Minute {
			return fmt.Errorf("challenge: %d %s", status, truncate.String(string(body), 300))
		}
		if time.Since(start) < time.Second {
			d.detail("waiting for the gateway's zero-knowledge keys (a development setup runs on first start) …")
		}
		time.Sleep(2 * time.Second)
	}
	ch, err := circuits.ParseChallenge(chBody)
	if err != nil {
		return err
	}
	d.detail("challenge %s: prove birth_date <= %s, single use, valid until %s", ch.ID, cutoff, ch.ExpiresAt.Format(time.TimeOnly))

	d.say("The patient app makes a holder secret; hospital A issues a credential over the patient's attributes")
	secret, err := credential.NewSecret(rand.Reader)
	if err != nil {
		return err
	}
	status, credBody, err := d.raw(ctx, "POST", "/v1/credentials", hospital, map[string]any{
		"holder":     credential.FormatElement(secret.Commitment()),
		"attributes": map[string]string{"birth_date": "1990-04-01", "hba1c": "7.1", "diagnosis": "E11.9"},
		"expires":    time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly),
	})
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return fmt.Errorf("issue credential: %d %s", status, truncate.String(string(credBody), 300))
	}
	cred, err := credential.ParseCredential(credBody)
	if err != nil {
		return err
	}
	d.detail("credential signed by hospital A's issuer key (EdDSA on BN254); the gateway saw only the secret's commitment")

	d.say("The patient app downloads the proving key and proves the statement on the patient's device")
	pkPath := filepath.Join(dir, "age.pk")
	if err := d.download(ctx, "/v1/circuits/age/proving-key", ins, pkPath); err != nil {
		return err
	}
	ccs, err := circuits.Compile(circuits.Age)
	if err != nil {
		return err
	}
	pk, err := circuits.ReadProvingKey(pkPath)
	if err != nil {
		return err
	}
	prover, err := circuits.NewProver(circuits.Age, ccs, pk)
	if err != nil {
		return err
	}
	start := time.Now()
	proof, err := prover.Prove(cred, secret, ch)
	if err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	proofBody, err := circuits.MarshalProof(proof)
	if err != nil {
		return err
	}
	d.detail("Groth16 proof of %d bytes in %s; it reveals no birth date", len(proof.Bytes), time.Since(start).Round(time.Millisecond))

	d.say("The insurer verifies the proof")
	var res struct {
		Valid       bool   `json:"valid"`
		Issuer      string `json:"issuer"`
		Reason      string `json:"reason"`
		Message     string `json:"message"`
		LedgerIndex uint64 `json:"ledger_index"`
	}
	if err := d.call(ctx, "POST", "/v1/proofs/verify", ins, json.RawMessage(proofBody), 200, &res); err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("the proof was refused: %s (%s)", res.Reason, res.Message)
	}
	d.detail("valid: over 18, credential issued by %s; logged at ledger index %d", res.Issuer, res.LedgerIndex)

	d.say("Someone replays the same proof")
	if err := d.call(ctx, "POST", "/v1/proofs/verify", ins, json.RawMessage(proofBody), 200, &res); err != nil {
		return err
	}
	if res.Valid || res.Reason != "challenge.used" {
		return fmt.Errorf("a replayed proof was not refused: %+v", res)
	}
	d.detail("refused: %s (logged too)", res.Message)
	return nil
}

// raw sends a JSON request and returns the status and body.
func (d *demo) raw(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, err
}

// download saves a GET response body to path.
func (d *demo) download(ctx context.Context, path, token, dst string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", d.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 64<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
