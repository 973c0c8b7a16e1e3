package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consensys/gnark/logger"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/ceremony"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/internal/atomicfile"
)

// cmdZK dispatches the zero-knowledge subcommands.
func cmdZK(ctx context.Context, e *env, args []string) error {
	// gnark logs to stdout through a global logger; keep stdout for results.
	logger.Disable()
	return dispatch(ctx, e, "healthgw zk", []command{
		{"setup", "single-party DEVELOPMENT setup: write a key directory", cmdZKSetup},
		{"ceremony", "multi-party setup: init, contribute, verify, finalize", cmdZKCeremony},
		{"circuits", "list the statements of a key directory (versions, VK hashes)", cmdZKCircuits},
		{"issuer-key", "generate a credential issuer key", cmdZKIssuerKey},
		{"secret", "generate a holder secret (patient app side)", cmdZKSecret},
		{"issue", "issue a credential from an issuer key (demo; the gateway issues via the API)", cmdZKIssue},
		{"show", "print a credential's attributes", cmdZKShow},
		{"challenge", "make a challenge file (demo; verifiers get one from the API)", cmdZKChallenge},
		{"prove", "prove a statement about a credential", cmdZKProve},
		{"verify", "verify a proof file against a challenge", cmdZKVerify},
	}, args)
}

const devBanner = `
########################################################################
##  DEVELOPMENT KEYS ONLY — NOT FOR PRODUCTION                        ##
##  This single-party setup generated (and could have kept) the       ##
##  toxic waste: whoever ran it can forge proofs of every statement.  ##
##  Use "healthgw zk ceremony" for keys that verify anything real.    ##
########################################################################

`

func cmdZKSetup(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk setup")
	dev := fs.Bool("dev", false, "required: acknowledge that this is a development-only single-party setup")
	keys := fs.String("keys", "", "key directory to create (must not exist)")
	stmts := fs.String("statements", "", "comma-separated statements (default: all)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if !*dev {
		return errors.New("zk setup: only --dev setups exist; production keys come from \"healthgw zk ceremony\"")
	}
	if *keys == "" {
		return errors.New("zk setup: --keys is required")
	}
	statements, err := parseStatements(*stmts)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stderr, devBanner)
	infos, err := circuits.SetupDevKeys(ctx, *keys, statements, e.stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stderr, devBanner)
	return printCircuits(e.stdout, infos)
}

func parseStatements(s string) ([]circuits.Statement, error) {
	if s == "" {
		return circuits.Statements(), nil
	}
	var out []circuits.Statement
	for _, name := range strings.Split(s, ",") {
		st, err := circuits.ParseStatement(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func printCircuits(w io.Writer, infos []circuits.CircuitInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATEMENT\tVERSION\tSETUP\tCONSTRAINTS\tVK SHA-256")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", i.Statement, i.Version, i.Setup, i.Constraints, i.VKHash)
	}
	return tw.Flush()
}

func cmdZKCircuits(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk circuits")
	keys := fs.String("keys", "", "key directory")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *keys == "" {
		return errors.New("zk circuits: --keys is required")
	}
	v, err := circuits.LoadVerifier(*keys) // checks every VK against the manifest
	if err != nil {
		return err
	}
	return printCircuits(e.stdout, v.Circuits())
}

func cmdZKCeremony(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw zk ceremony", []command{
		{"init", "start a ceremony directory for the statements", cmdCeremonyInit},
		{"contribute", "add your contribution to the current phase", cmdCeremonyContribute},
		{"verify", "verify every contribution (and the keys once finalized)", cmdCeremonyVerify},
		{"finalize", "close the current phase with a public random beacon", cmdCeremonyFinalize},
	}, args)
}

func cmdCeremonyInit(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk ceremony init")
	dir := fs.String("dir", "", "ceremony directory")
	stmts := fs.String("statements", "", "comma-separated statements (default: all)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("zk ceremony init: --dir is required")
	}
	statements, err := parseStatements(*stmts)
	if err != nil {
		return err
	}
	if err := ceremony.Init(*dir, statements, e.stderr); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ceremony initialised in %s; next: each participant runs \"healthgw zk ceremony contribute --dir %s --name <org>\"\n", *dir, *dir)
	return nil
}

func cmdCeremonyContribute(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk ceremony contribute")
	dir := fs.String("dir", "", "ceremony directory")
	name := fs.String("name", "", "participant name (e.g. your org ID)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *dir == "" || *name == "" {
		return errors.New("zk ceremony contribute: --dir and --name are required")
	}
	r, err := ceremony.Contribute(*dir, *name, e.stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "contribution %d to phase %d by %s at %s\n", r.Index, r.Phase, r.Name, r.Time.Format(time.RFC3339))
	fmt.Fprintln(e.stdout, "publish these hashes; anyone can check them against the final transcript:")
	for _, k := range slices.Sorted(maps.Keys(r.Hashes)) {
		fmt.Fprintf(e.stdout, "  %s %s\n", k, r.Hashes[k])
	}
	return nil
}

func cmdCeremonyVerify(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk ceremony verify")
	dir := fs.String("dir", "", "ceremony directory")
	keys := fs.String("keys", "", "also check that this key directory holds the ceremony's keys")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("zk ceremony verify: --dir is required")
	}
	rep, err := ceremony.VerifyKeys(*dir, *keys, e.stderr)
	if err != nil {
		return exitError{code: 2, err: err}
	}
	printReport(e.stdout, rep)
	fmt.Fprintln(e.stdout, "OK: every contribution verifies")
	return nil
}

func printReport(w io.Writer, rep *ceremony.Report) {
	phase := map[int]string{ceremony.Phase1: "1 (powers of tau)", ceremony.Phase2: "2 (circuit specific)", ceremony.Done: "done"}[rep.Phase]
	fmt.Fprintf(w, "phase %s, domain %d, circuits %s\n", phase, rep.Domain, strings.Join(rep.Circuits, ", "))
	for _, r := range rep.Contributions {
		fmt.Fprintf(w, "  phase %d #%d %-20s %s\n", r.Phase, r.Index, r.Name, r.Time.Format(time.RFC3339))
		for _, k := range slices.Sorted(maps.Keys(r.Hashes)) {
			fmt.Fprintf(w, "      %s %s\n", k, r.Hashes[k])
		}
	}
	if len(rep.Keys) > 0 {
		printCircuits(w, rep.Keys)
	}
}

func cmdCeremonyFinalize(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk ceremony finalize")
	dir := fs.String("dir", "", "ceremony directory")
	beacon := fs.String("beacon", "", "hex public random beacon, published after the last contribution (e.g. a future drand round)")
	keys := fs.String("keys", "", "key directory to write after phase 2 (default <dir>/keys)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *dir == "" || *beacon == "" {
		return errors.New("zk ceremony finalize: --dir and --beacon are required")
	}
	b, err := hex.DecodeString(*beacon)
	if err != nil {
		return fmt.Errorf("zk ceremony finalize: --beacon: %w", err)
	}
	rep, err := ceremony.Finalize(*dir, b, *keys, e.stderr)
	if err != nil {
		return err
	}
	printReport(e.stdout, rep)
	if rep.Phase == ceremony.Phase2 {
		fmt.Fprintln(e.stdout, "phase 1 closed; phase 2 is open: every participant contributes again, then finalize again with a new beacon")
	}
	return nil
}

func cmdZKIssuerKey(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk issuer-key")
	out := fs.String("out", "", "private key file to create (PEM, mode 0600)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("zk issuer-key: --out is required")
	}
	k, err := credential.GenerateIssuerKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := writeNew(*out, k.MarshalPEM(), 0o600); err != nil {
		return err
	}
	pub := k.Public()
	fmt.Fprintf(e.stdout, "public_key %s\nkey_id %s\n", pub, pub.ID())
	return nil
}

func cmdZKSecret(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk secret")
	out := fs.String("out", "", "holder secret file to create (mode 0600)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("zk secret: --out is required")
	}
	s, err := credential.NewSecret(rand.Reader)
	if err != nil {
		return err
	}
	b, err := credential.MarshalSecret(s)
	if err != nil {
		return err
	}
	if err := writeNew(*out, b, 0o600); err != nil {
		return err
	}
	c := s.Commitment()
	fmt.Fprintf(e.stdout, "holder %s\n", credential.FormatElement(c))
	return nil
}

// attrFlag collects repeated --attr name=value flags.
type attrFlag map[string]string

func (a attrFlag) String() string { return "" }

func (a attrFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	if _, dup := a[k]; dup {
		return fmt.Errorf("attribute %s given twice", k)
	}
	a[k] = val
	return nil
}

var _ flag.Value = attrFlag(nil)

func cmdZKIssue(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk issue")
	keyFile := fs.String("key", "", "issuer private key file")
	holder := fs.String("holder", "", "holder commitment (hex), from the patient app")
	schema := fs.String("schema", credential.PatientV1.Name, "schema name")
	expiry := fs.String("expiry", "", "last valid day, YYYY-MM-DD")
	out := fs.String("out", "", "credential file to write (default stdout)")
	attrs := attrFlag{}
	fs.Var(attrs, "attr", "attribute name=value (repeatable), e.g. birth_date=1990-04-01, hba1c=7.2, diagnosis=E11.9")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *keyFile == "" || *holder == "" || *expiry == "" {
		return errors.New("zk issue: --key, --holder and --expiry are required")
	}
	kb, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := credential.ParseIssuerKey(kb)
	if err != nil {
		return err
	}
	h, err := credential.ParseElement(*holder)
	if err != nil {
		return fmt.Errorf("--holder: %w", err)
	}
	sc, err := credential.SchemaByName(*schema)
	if err != nil {
		return err
	}
	values, err := sc.Parse(attrs)
	if err != nil {
		return err
	}
	exp, err := credential.ParseDay(*expiry)
	if err != nil {
		return fmt.Errorf("--expiry: %w", err)
	}
	c, err := credential.Issue(key, h, sc, values, exp)
	if err != nil {
		return err
	}
	b, err := credential.MarshalCredential(c)
	if err != nil {
		return err
	}
	return writeOut(e, *out, b)
}

func cmdZKShow(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk show")
	file := fs.String("credential", "", "credential file")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("zk show: --credential is required")
	}
	c, err := readCredential(*file)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "issuer %s (key id %s)\nschema %s\nexpiry %s\n", c.Issuer, c.Issuer.ID(), c.Schema.Name, c.Expiry)
	for i, a := range c.Schema.Attributes {
		unit := ""
		if a.Unit != "" && c.Attributes[i] != credential.Absent {
			unit = " " + a.Unit
		}
		fmt.Fprintf(e.stdout, "  %-12s %s%s\n", a.Name, a.Format(c.Attributes[i]), unit)
	}
	return nil
}

func cmdZKChallenge(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk challenge")
	stmt := fs.String("statement", "", "statement: age, range or member")
	params := fs.String("params", "", `parameters as JSON or @file, e.g. {"attribute":"birth_date","cutoff":"2008-03-01"}`)
	verifier := fs.String("verifier", "", "org ID of the verifier the challenge is for (its scope is derived from it)")
	keyFile := fs.String("key", "", "challenge signing key: the gateway's "+challengeKeyFile+" under its data directory")
	date := fs.String("date", "", "date the credential must be valid on, YYYY-MM-DD (default today, UTC)")
	out := fs.String("out", "", "challenge file to write (default stdout)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *verifier == "" || *keyFile == "" {
		return errors.New("zk challenge: --verifier and --key are required")
	}
	seed, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("zk challenge: %s is not a challenge key (%d bytes, want %d)", *keyFile, len(seed), ed25519.SeedSize)
	}
	s, err := circuits.ParseStatement(*stmt)
	if err != nil {
		return err
	}
	p, err := readParams(s, *params)
	if err != nil {
		return err
	}
	day, err := dayOrToday(*date)
	if err != nil {
		return err
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	ch := circuits.Challenge{
		ID: hex.EncodeToString(nonce[:8]), Statement: s, Params: p, Nonce: nonce,
		Verifier: *verifier, Scope: circuits.ScopeFor(*verifier), Date: day,
	}
	if err := ch.Sign(ed25519.NewKeyFromSeed(seed)); err != nil {
		return err
	}
	b, err := circuits.MarshalChallenge(ch)
	if err != nil {
		return err
	}
	return writeOut(e, *out, b)
}

func dayOrToday(s string) (credential.Day, error) {
	if s == "" {
		return credential.DayOf(time.Now())
	}
	return credential.ParseDay(s)
}

// readParams reads --params: a JSON object or @file holding one.
func readParams(s circuits.Statement, arg string) (circuits.Params, error) {
	if arg == "" {
		return circuits.Params{}, fmt.Errorf("--params is required for %s", s)
	}
	data := []byte(arg)
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return circuits.Params{}, err
		}
		data = b
	}
	var m map[string]string
	if err := credential.DecodeStrict(data, &m); err != nil {
		return circuits.Params{}, fmt.Errorf("--params: %w", err)
	}
	return circuits.ParseParams(s, m)
}

func readCredential(path string) (*credential.Credential, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := credential.ParseCredential(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// readChallengeKey reads the gateway's challenge key from a JWK Set file
// (the gateway's /.well-known/jwks.json; the key with ID
// circuits.ChallengeKeyID) or a file holding that one JWK.
func readChallengeKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not a JWK Set: %w", path, err)
	}
	k, ok := set.LookupKeyID(circuits.ChallengeKeyID)
	if !ok && set.Len() == 1 {
		k, ok = set.Key(0)
	}
	if !ok {
		return nil, fmt.Errorf("%s: no key %q", path, circuits.ChallengeKeyID)
	}
	var pub ed25519.PublicKey
	if err := jwk.Export(k, &pub); err != nil {
		return nil, fmt.Errorf("%s: the challenge key is not an Ed25519 key: %w", path, err)
	}
	return pub, nil
}

func readChallenge(path string) (circuits.Challenge, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return circuits.Challenge{}, err
	}
	ch, err := circuits.ParseChallenge(b)
	if err != nil {
		return circuits.Challenge{}, fmt.Errorf("%s: %w", path, err)
	}
	return ch, nil
}

func cmdZKProve(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk prove")
	credFile := fs.String("credential", "", "credential file")
	secretFile := fs.String("secret", "", "holder secret file")
	stmt := fs.String("statement", "", "statement (optional; must match the challenge)")
	params := fs.String("params", "", "parameters as JSON or @file (optional; must match the challenge; for member may add the set)")
	chFile := fs.String("challenge", "", "challenge file from the verifier")
	verifier := fs.String("verifier", "", "org ID of the verifier you are proving to: a challenge scoped to any other is refused")
	gwKey := fs.String("gateway-key", "", "the gateway's JWK Set (as served at /.well-known/jwks.json), with its challenge key")
	keys := fs.String("keys", "", "key directory (with the statement's pk.bin); or give --proving-key")
	pkFile := fs.String("proving-key", "", "the statement's proving key file alone (as the patient app and GET /v1/circuits/{statement}/proving-key serve it), instead of --keys")
	out := fs.String("out", "", "proof file to write (default stdout)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *credFile == "" || *secretFile == "" || *chFile == "" || *verifier == "" || *gwKey == "" || (*keys == "") == (*pkFile == "") {
		return errors.New("zk prove: --credential, --secret, --challenge, --verifier, --gateway-key and one of --keys or --proving-key are required")
	}
	trustKey, err := readChallengeKey(*gwKey)
	if err != nil {
		return err
	}
	cred, err := readCredential(*credFile)
	if err != nil {
		return err
	}
	sb, err := os.ReadFile(*secretFile)
	if err != nil {
		return err
	}
	secret, err := credential.ParseSecret(sb)
	if err != nil {
		return fmt.Errorf("%s: %w", *secretFile, err)
	}
	ch, err := readChallenge(*chFile)
	if err != nil {
		return err
	}
	// Before anything else: the challenge must be the gateway's, for the
	// verifier the patient means to prove to.
	trust := circuits.Trust{GatewayKey: trustKey, Verifier: *verifier}
	if err := ch.Check(trust.GatewayKey, trust.Verifier); err != nil {
		return fmt.Errorf("zk prove: refusing the challenge: %w", err)
	}
	if *stmt != "" && *stmt != string(ch.Statement) {
		return fmt.Errorf("zk prove: --statement %s, but the challenge is for %s", *stmt, ch.Statement)
	}
	if *params != "" {
		p, err := readParams(ch.Statement, *params)
		if err != nil {
			return err
		}
		if err := mergeParams(ch.Statement, &ch.Params, p); err != nil {
			return err
		}
	}
	prover, err := loadProver(*keys, *pkFile, ch.Statement, e.stderr)
	if err != nil {
		return err
	}
	step := circuits.StartStep(e.stderr, "proving %s", ch.Statement)
	proof, err := prover.ProveChallenge(cred, secret, ch, trust)
	step.Done(err)
	if err != nil {
		return err
	}
	b, err := circuits.MarshalProof(proof)
	if err != nil {
		return err
	}
	return writeOut(e, *out, b)
}

// loadProver loads the prover of s from a key directory, or from a
// proving key file alone (NewProver checks that it fits the statement; a
// key of another setup than the verifier's makes proofs that do not
// verify).
func loadProver(dir, pkFile string, s circuits.Statement, progress io.Writer) (*circuits.Prover, error) {
	if dir != "" {
		return circuits.LoadProver(dir, s, progress)
	}
	st := circuits.StartStep(progress, "compiling %s", s)
	ccs, err := circuits.Compile(s)
	st.Done(err)
	if err != nil {
		return nil, err
	}
	st = circuits.StartStep(progress, "loading proving key %s", pkFile)
	pk, err := circuits.ReadProvingKey(pkFile)
	st.Done(err)
	if err != nil {
		return nil, err
	}
	return circuits.NewProver(s, ccs, pk)
}

// mergeParams checks that the --params policy is the challenge's (apart
// from the member set, which the challenge may omit) and adds the set.
func mergeParams(s circuits.Statement, ch *circuits.Params, p circuits.Params) error {
	if !ch.Equal(s, p) {
		return fmt.Errorf("zk prove: --params %v do not match the challenge's %v", p.Map(s), ch.Map(s))
	}
	if p.Set != nil {
		ch.Set = p.Set
	}
	return nil
}

func cmdZKVerify(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "zk verify")
	keys := fs.String("keys", "", "key directory")
	proofFile := fs.String("proof", "", "proof file")
	chFile := fs.String("challenge", "", "the challenge the proof must answer")
	issuer := fs.String("issuer", "", "accepted issuer public key (hex); default: the proof's, printed for you to check")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *keys == "" || *proofFile == "" || *chFile == "" {
		return errors.New("zk verify: --keys, --proof and --challenge are required")
	}
	v, err := circuits.LoadVerifier(*keys)
	if err != nil {
		return err
	}
	pb, err := os.ReadFile(*proofFile)
	if err != nil {
		return err
	}
	p, err := circuits.ParseProof(pb)
	if err != nil {
		return err
	}
	ch, err := readChallenge(*chFile)
	if err != nil {
		return err
	}
	if p.Statement != ch.Statement {
		return exitError{code: 2, err: fmt.Errorf("proof is for %s, the challenge for %s", p.Statement, ch.Statement)}
	}
	pub := p.PublicFor(ch)
	if *issuer != "" {
		want, err := credential.ParsePublicKey(*issuer)
		if err != nil {
			return fmt.Errorf("--issuer: %w", err)
		}
		if !want.Equal(pub.Issuer) {
			return exitError{code: 2, err: errors.New("proof is for another issuer")}
		}
	}
	if err := v.Verify(p.Statement, pub, p.Bytes); err != nil {
		if errors.Is(err, circuits.ErrInvalidProof) {
			return exitError{code: 2, err: err}
		}
		return err
	}
	m := ch.Params.Map(p.Statement)
	delete(m, circuits.KeySet)
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv = append(kv, k+"="+m[k])
	}
	fmt.Fprintf(e.stdout, "VALID %s %s issuer=%s nullifier=%s\n", p.Statement, strings.Join(kv, " "), pub.Issuer, credential.FormatElement(pub.Nullifier))
	return nil
}

// writeOut writes data to path atomically, or to stdout if path is ""
// or "-".
func writeOut(e *env, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	return atomicfile.Replace(path, data, 0o644)
}

// writeNew creates path with data, refusing to overwrite: keys and
// secrets are never replaced by accident.
func writeNew(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Create(path, data, perm)
}
