// Package demo tells healthgw's story against a running gateway with
// real calls through the typed client, printing each step: hospitals
// register, a record is stored, a read is denied, the patient grants
// consent, the read is permitted, the patient revokes, the read is denied
// again, the patient and a regulator see every decision, the ledger
// verifies, and a patient proves eligibility in zero knowledge. It fails
// the moment a step does not behave as the story says. `healthgw demo`
// runs it.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/verify"
)

// Config is what the demo needs.
type Config struct {
	// Client calls the gateway.
	Client *client.Client
	// Out receives the story.
	Out io.Writer
	// DataDir is the gateway's data directory: the demo mints patient
	// tokens with its development IdP key.
	DataDir string
	// VerifierKeyPath is the gateway's checkpoint verifier key file.
	VerifierKeyPath string
	// RegisterOrg registers organisation o on the gateway's ledger with
	// fresh keys written under dir and returns its private signing key.
	RegisterOrg func(ctx context.Context, dir string, o auth.Org) (jwk.Key, error)
	// RegistryWait bounds the wait for the gateway to apply a new
	// organisation (DefaultRegistryWait).
	RegistryWait time.Duration
}

// Run tells the story; it returns the first step that did not hold.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.Out == nil || cfg.RegisterOrg == nil {
		return errors.New("demo: Client, Out and RegisterOrg are required")
	}
	d := &demo{cfg: cfg, c: cfg.Client, out: cfg.Out}
	return d.run(ctx)
}

type demo struct {
	cfg   Config
	c     *client.Client
	out   io.Writer
	step  int
	runID string // this run's suffix of patient and org IDs
}

// org is the ID of this run's demo organisation base: each run registers
// its own organisations (an org is registered once, and its keys rotate
// only with its current private key, which the previous run's temporary
// directory held), so that the demo runs again, at any gateway of a
// consortium.
func (d *demo) org(base string) string { return base + "-" + d.runID }

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n%2d. %s\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) detail(format string, args ...any) {
	fmt.Fprintf(d.out, "    %s\n", fmt.Sprintf(format, args...))
}

// denied checks that a read is answered exactly like a missing record.
func (d *demo) denied(ctx context.Context, token, id string) error {
	_, err := d.c.ReadRecord(ctx, token, id, "TREAT", "")
	if !errors.Is(err, client.ErrNotFound) {
		return fmt.Errorf("read of record %s: %v, want not found", id, err)
	}
	return nil
}

// orgToken registers an organisation with fresh keys and exchanges a
// client assertion for an access token.
func (d *demo) orgToken(ctx context.Context, dir string, o auth.Org) (string, error) {
	key, err := d.cfg.RegisterOrg(ctx, dir, o)
	if err != nil {
		return "", err
	}
	endpoint := d.c.BaseURL() + auth.TokenPath
	// The registration may have been committed through another node (a
	// consortium): the gateway knows the organisation once its node has
	// applied the block, so an unknown client is retried, with progress,
	// until RegistryWait.
	wait := d.cfg.RegistryWait
	if wait <= 0 {
		wait = DefaultRegistryWait
	}
	deadline := time.Now().Add(wait)
	var tick *time.Ticker
	for attempt := 0; ; attempt++ {
		as, err := auth.NewClientAssertion(key, o.ID, endpoint, time.Now(), 0)
		if err != nil {
			return "", err
		}
		tr, err := d.c.Exchange(ctx, endpoint, as, "")
		if err == nil {
			if attempt > 0 {
				fmt.Fprintf(d.cfg.Out, "   … the gateway knows %s\n", o.ID)
			}
			return tr.AccessToken, nil
		}
		var te *client.TokenError
		if !errors.As(err, &te) || te.Code != "invalid_client" || time.Now().After(deadline) {
			if attempt > 0 {
				return "", fmt.Errorf("token for %s (the gateway had not applied its registration after %s): %w", o.ID, wait, err)
			}
			return "", fmt.Errorf("token for %s: %w", o.ID, err)
		}
		if tick == nil {
			fmt.Fprintf(d.cfg.Out, "   … waiting for the gateway to apply the registration of %s (up to %s)\n", o.ID, wait)
			tick = time.NewTicker(registryPoll)
			defer tick.Stop()
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}

// DefaultRegistryWait bounds how long the demo waits for the gateway to
// apply a new organisation's registration.
const DefaultRegistryWait = time.Minute

// registryPoll is how often the demo asks again.
const registryPoll = 250 * time.Millisecond

// verifyResult is the part of a proof verification's answer the demo
// shows.
type verifyResult struct {
	Valid       bool   `json:"valid"`
	Issuer      string `json:"issuer"`
	Reason      string `json:"reason"`
	Message     string `json:"message"`
	LedgerIndex uint64 `json:"ledger_index"`
}

// verifier is the ledger's checkpoint verifier key.
func (d *demo) verifier() (note.Verifier, error) {
	vkey, err := os.ReadFile(d.cfg.VerifierKeyPath)
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier key: %w", err)
	}
	return ledger.ParseVerifierKey(strings.TrimSpace(string(vkey)))
}

// checkReceipt checks the patient's consent receipt against the
// checkpoint key (inclusion, seal, commitment: client.VerifyEntry), shows
// what it says, and shows that a hospital the consent does not name gets
// the entry's leaf and proof but not its body.
func (d *demo) checkReceipt(ctx context.Context, v note.Verifier, r client.EntryProof, other string) error {
	st, err := client.VerifyEntry(r, v, "")
	if err != nil {
		return fmt.Errorf("RECEIPT VERIFICATION FAILED: %w", err)
	}
	g, ok := st.Body.(*ledger.ConsentGrantedV2)
	if !ok {
		return fmt.Errorf("the receipt's statement is a %s, not the grant", st.Type)
	}
	d.detail("receipt verified against the checkpoint key: %s grants %s %s for %s (signed by gateway %s; the patient named only by %s…)",
		st.Type, g.Grantee.Org, strings.Join(g.Categories, ","), strings.Join(g.Purposes, ","), st.Author, g.Patient[:11])
	d.detail("the public leaf says only %s", r.Entry)
	seen, err := d.c.Entry(ctx, other, r.Index)
	if err != nil {
		return err
	}
	if _, err := client.VerifyEntry(seen, v, ""); !errors.Is(err, client.ErrNoBody) {
		return fmt.Errorf("hospital A, not a party, was served entry %d's body (or its proof fails): %v", r.Index, err)
	}
	d.detail("Hospital A, not a party to the consent, gets entry %d's leaf and inclusion proof only", r.Index)
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (d *demo) run(ctx context.Context) error {
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	run := hex.EncodeToString(suffix[:])
	d.runID = run
	patient := "demo-patient-" + run
	dir, err := os.MkdirTemp("", "healthgw-demo-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(d.out, "healthgw demo against %s (data directory %s)\n", d.c.BaseURL(), d.cfg.DataDir)

	d.say("Register two hospitals and a regulator (org.registered entries on the ledger)")
	tokens := map[string]string{}
	for _, o := range []auth.Org{
		{ID: d.org("demo-hosp-a"), Name: "Demo Hospital A", Kind: auth.KindHospital},
		{ID: d.org("demo-hosp-b"), Name: "Demo Hospital B", Kind: auth.KindHospital},
		{ID: d.org("demo-regulator"), Name: "Demo Health Regulator", Kind: auth.KindRegulator},
	} {
		tok, err := d.orgToken(ctx, dir, o)
		if err != nil {
			return fmt.Errorf("register %s: %w", o.ID, err)
		}
		tokens[o.ID] = tok
		d.detail("%-15s %-9s registered; access token issued", o.ID, o.Kind)
	}
	a, b, reg := tokens[d.org("demo-hosp-a")], tokens[d.org("demo-hosp-b")], tokens[d.org("demo-regulator")]
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(d.cfg.DataDir))
	if err != nil {
		return err
	}
	ptok, err := idp.Mint(patient, d.c.BaseURL(), time.Now(), 15*time.Minute)
	if err != nil {
		return err
	}

	d.say("Hospital A stores a lab result (HbA1c) for patient %s", patient)
	obs := json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}]},"valueQuantity":{"value":7.1,"unit":"%"}}`)
	rec, err := d.c.PutRecord(ctx, a, client.RecordUpload{Patient: patient, Category: "labs", ContentType: "application/fhir+json", Content: obs})
	if err != nil {
		return err
	}
	d.detail("record %s encrypted at rest; ledger entry %d commits to its ciphertext (%s…), sealed to the gateway: the public log shows only the entry's type and time", rec.ID, rec.LedgerIndex, rec.Commitment[:16])

	d.say("Hospital B asks to read it for treatment: denied (looks exactly like a missing record)")
	if err := d.denied(ctx, b, rec.ID); err != nil {
		return err
	}
	d.detail("404, and the deny is on the ledger")

	d.say("The patient grants Hospital B access to labs for treatment")
	grant, err := d.c.Grant(ctx, ptok, client.ConsentRequest{Grantee: client.Grantee{Org: d.org("demo-hosp-b")}, Categories: []string{"labs"}, Purposes: []string{"TREAT"}})
	if err != nil {
		return err
	}
	d.detail("consent %s; receipt: entry %d proven in a signed checkpoint of size %d", grant.Consent.ID, grant.Receipt.Index, grant.Receipt.TreeSize)
	v, err := d.verifier()
	if err != nil {
		return err
	}
	if err := d.checkReceipt(ctx, v, grant.Receipt, a); err != nil {
		return err
	}

	d.say("Hospital B reads the lab result")
	got, err := d.c.ReadRecord(ctx, b, rec.ID, "TREAT", "")
	if err != nil {
		return err
	}
	d.detail("permitted; the access was logged durably before the record was decrypted (%d bytes)", len(got.Content))

	d.say("The patient revokes the consent")
	if _, err := d.c.Revoke(ctx, ptok, grant.Consent.ID); err != nil {
		return err
	}

	d.say("Hospital B tries again: denied on the very next request")
	if err := d.denied(ctx, b, rec.ID); err != nil {
		return err
	}

	d.say("The patient reads their access log")
	log, err := d.c.AccessLog(ctx, ptok, nil)
	if err != nil {
		return err
	}
	for _, ev := range log.Events {
		d.detail("#%-5d %s  %-12s %-6s %-7s %s", ev.LedgerIndex, ev.Time.Format(time.TimeOnly), ev.Requester, ev.Purpose, ev.Decision, ev.Reason)
	}
	if len(log.Events) != 3 {
		return fmt.Errorf("the access log has %d events, want 3 (deny, permit, deny)", len(log.Events))
	}

	d.say("The regulator lists the access events for this patient")
	if log, err = d.c.AuditEvents(ctx, reg, url.Values{"patient": {patient}}); err != nil {
		return err
	}
	d.detail("%d events, each with its ledger index for an inclusion proof", len(log.Events))

	d.say("The regulator verifies the whole ledger offline (healthgw ledger verify)")
	res, err := verify.Remote(ctx, d.c.BaseURL()+"/ledger/", d.c.HTTPClient(), verify.Options{Verifier: v})
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
	fmt.Fprintln(d.out, "\nThe story holds: consent decides, every decision is on the ledger, the ledger verifies,")
	fmt.Fprintln(d.out, "and eligibility is proven without disclosure and cannot be replayed.")
	return nil
}

// challengeKey fetches the gateway's challenge signing key from its JWK
// Set.
func (d *demo) challengeKey(ctx context.Context) (ed25519.PublicKey, error) {
	status, body, err := d.c.Raw(ctx, "GET", "/.well-known/jwks.json", "", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("gateway JWK Set: %d", status)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("gateway JWK Set: %w", err)
	}
	k, ok := set.LookupKeyID(circuits.ChallengeKeyID)
	if !ok {
		return nil, errors.New("the gateway publishes no challenge key")
	}
	var pub ed25519.PublicKey
	if err := jwk.Export(k, &pub); err != nil {
		return nil, fmt.Errorf("challenge key: %w", err)
	}
	return pub, nil
}

// eligibility is the zero-knowledge part of the story: hospital A issues a
// credential, the patient proves "over 18" to an insurer, a replay is
// refused.
func (d *demo) eligibility(ctx context.Context, dir, hospital string) error {
	d.say("An insurer (a verifier) registers; it asks for proof that the patient is over 18")
	ins, err := d.orgToken(ctx, dir, auth.Org{ID: d.org("demo-insurer"), Name: "Demo Insurer", Kind: auth.KindVerifier})
	if err != nil {
		return err
	}
	cutoff := time.Now().UTC().AddDate(-18, 0, 0).Format(time.DateOnly)
	var chBody []byte
	for start := time.Now(); ; {
		status, body, err := d.c.Raw(ctx, "POST", "/v1/proofs/challenges", ins, map[string]any{
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
			return fmt.Errorf("challenge: %d %s", status, truncate(string(body), 300))
		}
		if time.Since(start) < time.Second {
			d.detail("waiting for the gateway's zero-knowledge keys (a development setup runs on first start) …")
		}
		select { // the keys come when the gateway's setup finishes
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	ch, err := circuits.ParseChallenge(chBody)
	if err != nil {
		return err
	}
	d.detail("challenge %s: prove birth_date <= %s, single use, valid until %s", ch.ID, cutoff, ch.ExpiresAt.Format(time.TimeOnly))
	gwKey, err := d.challengeKey(ctx)
	if err != nil {
		return err
	}
	trust := circuits.Trust{GatewayKey: gwKey, Verifier: d.org("demo-insurer")}
	if err := ch.Check(trust.GatewayKey, trust.Verifier); err != nil {
		return fmt.Errorf("the challenge: %w", err)
	}
	d.detail("the patient app checks the gateway's signature on the challenge and that it is scoped to %s, the verifier it proves to", trust.Verifier)

	d.say("The patient app makes a holder secret; hospital A issues a credential over the patient's attributes")
	secret, err := credential.NewSecret(rand.Reader)
	if err != nil {
		return err
	}
	status, credBody, err := d.c.Raw(ctx, "POST", "/v1/credentials", hospital, map[string]any{
		"holder":     credential.FormatElement(secret.Commitment()),
		"attributes": map[string]string{"birth_date": "1990-04-01", "hba1c": "7.1", "diagnosis": "E11.9"},
		"expires":    time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly),
	})
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return fmt.Errorf("issue credential: %d %s", status, truncate(string(credBody), 300))
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
	proof, err := prover.ProveChallenge(cred, secret, ch, trust)
	if err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	proofBody, err := circuits.MarshalProof(proof)
	if err != nil {
		return err
	}
	d.detail("Groth16 proof of %d bytes in %s; it reveals no birth date", len(proof.Bytes), time.Since(start).Round(time.Millisecond))

	d.say("The insurer verifies the proof")
	var res verifyResult
	if err := d.c.Do(ctx, "POST", "/v1/proofs/verify", ins, json.RawMessage(proofBody), 200, &res); err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("the proof was refused: %s (%s)", res.Reason, res.Message)
	}
	d.detail("valid: over 18, credential issued by %s; logged at ledger index %d", res.Issuer, res.LedgerIndex)

	d.say("Someone replays the same proof")
	if err := d.c.Do(ctx, "POST", "/v1/proofs/verify", ins, json.RawMessage(proofBody), 200, &res); err != nil {
		return err
	}
	if res.Valid || res.Reason != "challenge.used" {
		return fmt.Errorf("a replayed proof was not refused: %+v", res)
	}
	d.detail("refused: %s (logged too)", res.Message)
	return nil
}

// download saves a GET response body to path.
func (d *demo) download(ctx context.Context, path, token, dst string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", d.c.BaseURL()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := d.c.HTTPClient().Do(req)
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
