package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/circuits"
)

func runZK(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), append([]string{"zk"}, args...), func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustZK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runZK(t, args...)
	if err != nil {
		t.Fatalf("healthgw zk %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// TestZKFlow runs the demo flow through the CLI: issuer key, holder secret,
// issuance, a challenge, a development setup of the age statement, proving
// and verification, and a replay against another challenge.
func TestZKFlow(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }

	out := mustZK(t, "issuer-key", "--out", p("issuer.pem"))
	if !strings.HasPrefix(out, "public_key ") {
		t.Fatalf("issuer-key output %q", out)
	}
	issuer := strings.Fields(out)[1]
	out = mustZK(t, "secret", "--out", p("secret.json"))
	holder := strings.TrimSpace(strings.TrimPrefix(out, "holder "))
	if st, err := os.Stat(p("secret.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", st, err)
	}
	if _, _, err := runZK(t, "secret", "--out", p("secret.json")); err == nil {
		t.Fatal("secret overwrote an existing file")
	}
	mustZK(t, "issue", "--key", p("issuer.pem"), "--holder", holder, "--expiry", "2027-12-31",
		"--attr", "birth_date=1990-04-01", "--attr", "hba1c=7.2", "--out", p("cred.json"))
	out = mustZK(t, "show", "--credential", p("cred.json"))
	for _, want := range []string{"birth_date   1990-04-01", "hba1c        7.2 %", "ldl          absent"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	params := `{"attribute":"birth_date","cutoff":"2008-03-01"}`
	writeChallengeKey(t, p("challenge.key"), p("jwks.json"))
	mustZK(t, "challenge", "--statement", "age", "--params", params, "--verifier", "insurer-acme", "--key", p("challenge.key"), "--date", "2026-03-01", "--out", p("ch.json"))
	mustZK(t, "challenge", "--statement", "age", "--params", params, "--verifier", "insurer-acme", "--key", p("challenge.key"), "--date", "2026-03-01", "--out", p("ch2.json"))
	// Another verifier's challenge, and a tampered one.
	mustZK(t, "challenge", "--statement", "age", "--params", params, "--verifier", "insurer-other", "--key", p("challenge.key"), "--date", "2026-03-01", "--out", p("ch-other.json"))
	ch, err := os.ReadFile(p("ch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("ch-tampered.json"), []byte(strings.Replace(string(ch), `"date": "2026-03-01"`, `"date": "2026-03-02"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	_, errOut, err := runZK(t, "setup", "--dev", "--keys", p("keys"), "--statements", "age")
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "DEVELOPMENT KEYS ONLY") {
		t.Errorf("setup --dev printed no warning banner:\n%s", errOut)
	}
	out = mustZK(t, "circuits", "--keys", p("keys"))
	if !strings.Contains(out, "age        "+strconv.Itoa(circuits.Age.Version())+"        dev") {
		t.Errorf("circuits output:\n%s", out)
	}

	// The prover refuses, before proving, a challenge scoped to another
	// verifier than the one it proves to, and a tampered one.
	for _, tc := range []struct{ name, challenge, verifier, want string }{
		{"scoped to another verifier", p("ch-other.json"), "insurer-acme", "another verifier"},
		{"for this verifier, proved to another", p("ch.json"), "insurer-other", "another verifier"},
		{"tampered", p("ch-tampered.json"), "insurer-acme", "signature"},
	} {
		_, errOut, err := runZK(t, "prove", "--credential", p("cred.json"), "--secret", p("secret.json"),
			"--challenge", tc.challenge, "--verifier", tc.verifier, "--gateway-key", p("jwks.json"), "--keys", p("keys"), "--out", p("refused.json"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(errOut, "proving") {
			t.Errorf("%s: err %v (stderr %q), want a refusal naming %q before proving", tc.name, err, errOut, tc.want)
		}
		if _, err := os.Stat(p("refused.json")); err == nil {
			t.Errorf("%s: a proof was written", tc.name)
		}
	}
	mustZK(t, "prove", "--credential", p("cred.json"), "--secret", p("secret.json"), "--statement", "age",
		"--params", params, "--challenge", p("ch.json"), "--verifier", "insurer-acme", "--gateway-key", p("jwks.json"), "--keys", p("keys"), "--out", p("proof.json"))
	out = mustZK(t, "verify", "--keys", p("keys"), "--proof", p("proof.json"), "--challenge", p("ch.json"), "--issuer", issuer)
	if !strings.HasPrefix(out, "VALID age") {
		t.Errorf("verify output %q", out)
	}

	// The same proof against a fresh challenge (another nonce) fails with
	// exit status 2.
	_, _, err = runZK(t, "verify", "--keys", p("keys"), "--proof", p("proof.json"), "--challenge", p("ch2.json"))
	var ex exitError
	if !errors.As(err, &ex) || ex.code != 2 {
		t.Errorf("replayed proof: %v, want exit status 2", err)
	}

	// A patient has the proving key file alone (the patient app serves
	// it), not a key directory.
	pk, err := os.ReadFile(circuits.ProvingKeyPath(p("keys"), circuits.Age))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("age.pk"), pk, 0o600); err != nil {
		t.Fatal(err)
	}
	mustZK(t, "prove", "--credential", p("cred.json"), "--secret", p("secret.json"), "--challenge", p("ch2.json"),
		"--verifier", "insurer-acme", "--gateway-key", p("jwks.json"), "--proving-key", p("age.pk"), "--out", p("proof2.json"))
	if out := mustZK(t, "verify", "--keys", p("keys"), "--proof", p("proof2.json"), "--challenge", p("ch2.json")); !strings.HasPrefix(out, "VALID age") {
		t.Errorf("verify of the proof made with --proving-key: %q", out)
	}
	if _, _, err := runZK(t, "prove", "--credential", p("cred.json"), "--secret", p("secret.json"), "--challenge", p("ch2.json"),
		"--verifier", "insurer-acme", "--gateway-key", p("jwks.json"), "--proving-key", p("age.pk"), "--keys", p("keys"), "--out", p("proof3.json")); err == nil {
		t.Error("prove with both --keys and --proving-key: no error")
	}
}

func TestZKErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"setup without --dev", []string{"setup", "--keys", filepath.Join(dir, "k")}},
		{"unknown statement", []string{"setup", "--dev", "--keys", filepath.Join(dir, "k"), "--statements", "height"}},
		{"unknown subcommand", []string{"frobnicate"}},
		{"prove without flags", []string{"prove"}},
		{"challenge with bad params", []string{"challenge", "--statement", "range", "--params", `{"attribute":"hba1c","lo":"7"}`, "--verifier", "s", "--key", filepath.Join(dir, "k")}},
		{"challenge without a key", []string{"challenge", "--statement", "age", "--params", `{"attribute":"birth_date","cutoff":"2008-03-01"}`, "--verifier", "s"}},
		{"finalize with a short beacon", []string{"ceremony", "finalize", "--dir", dir, "--beacon", "00"}},
		{"verify of a missing ceremony", []string{"ceremony", "verify", "--dir", dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := runZK(t, tc.args...); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// writeChallengeKey writes a fresh challenge signing key (the gateway's
// key file) to keyFile and its public half as the gateway's JWK Set to
// jwksFile.
func writeChallengeKey(t *testing.T, keyFile, jwksFile string) ed25519.PublicKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, circuits.ChallengeKeyID); err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub
}
