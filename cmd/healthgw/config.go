package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/witness"
	"github.com/healthgw/healthgw/ratelimit"
	"github.com/healthgw/healthgw/records"
)

// serveConfig is everything `healthgw serve` reads from flags, HEALTHGW_*
// environment variables and an optional configuration file, in that order
// of precedence, over the documented defaults.
type serveConfig struct {
	tlsConfig // --tls-cert, --tls-key, --allow-dev-on-public (tls.go)

	Addr         string        // listen address (default 127.0.0.1:8080)
	BaseURL      string        // public URL (default http://<addr>)
	DataDir      string        // data directory (default ./data)
	DB           string        // database DSN (default <data>/healthgw.db)
	Ledger       string        // gormlog (default) or comet
	CometHome    string        // CometBFT home for --ledger comet
	CometRetain  int64         // blocks to keep (0: all)
	CometTimeout time.Duration // how long an append waits for commit
	// CometUnsettled is how many writes whose outcome is unknown the
	// gateway keeps (their envelopes, in the database) for their
	// retries; at the limit a new write is refused with 503 (default
	// ledger.DefaultUnsettled).
	CometUnsettled int
	Custodian      string // with --ledger comet: the consortium's patient custodian gateway (default: the first member)
	Origin         string // checkpoint origin line of a new log (default: the checkpoint key's name)
	KeyName        string // name of a new checkpoint key: Origin, else tlog-tiles' URL prefix of an explicit BaseURL, else healthgw/<random>
	DevIdP         bool   // mint patient tokens with a local development IdP
	PatientIss     string // patient identity provider issuer
	PatientJWKS    string // its JWKS file or URL
	// OIDC clients of the patient app and the regulator console (web/):
	// empty settings fall back to the development IdP with --dev-idp.
	PatientClientID     string
	PatientClientSecret string
	PatientRedirect     string // default <base>/app/callback
	ConsoleIss          string // regulator staff IdP issuer
	ConsoleClientID     string
	ConsoleClientSecret string
	ConsoleRedirect     string // default <base>/console/callback
	ConsoleOrg          string // the regulator org the console's staff act for
	MaxRecord           int64  // largest record accepted, bytes
	// MaxStreamRecord is the largest record a streamed upload (POST
	// /v1/records/upload) accepts, bytes (default 1 GiB); at least
	// MaxRecord.
	MaxStreamRecord int64
	// AuditMaxLag is the backlog of unapplied ledger entries an
	// access-log or audit query waits for; beyond it the query answers
	// 503 catching_up while the follower catches up (default
	// access.DefaultMaxQueryLag).
	AuditMaxLag      uint64
	BreakGlass       string   // comma-separated org kinds allowed to break the glass
	ZKKeys           string   // directory of Groth16 keys (default <data>/zk)
	ZKDevSetup       bool     // create development Groth16 keys when there are none
	Witnesses        listFlag // witnesses to submit checkpoints to: <verifier key>@<url>
	WitnessThreshold int      // cosignatures a checkpoint should carry (0: every witness)
	HTTPJWKS         bool     // allow plain-http JWKS URLs (development only)
	// RevocationRefresh is how often the revoked-token list is reloaded
	// from the database for revocations made by other replicas (0: the
	// default, 1 s; negative: never).
	RevocationRefresh time.Duration
	Shutdown          time.Duration
	LogFormat         string           // text (default) or json
	RateLimit         bool             // apply RateLimits (default on)
	RateLimits        ratelimit.Config // see ratelimit.DefaultConfig
	DebugAddr         string           // loopback address serving net/http/pprof (empty: off)
	// TrustedProxies are the reverse proxies whose X-Forwarded-For gives
	// the client address for rate limits and logs (default: none; the
	// socket peer is the client).
	TrustedProxies prefixList
}

// maxStreamRecord bounds --max-stream-record-bytes (1 TiB).
const maxStreamRecord = 1 << 40

func defaultServeConfig() serveConfig {
	return serveConfig{
		Addr:            "127.0.0.1:8080",
		DataDir:         "data",
		Ledger:          "gormlog",
		DevIdP:          true,
		ZKDevSetup:      true,
		MaxRecord:       16 << 20,
		MaxStreamRecord: records.DefaultMaxStreamSize,
		AuditMaxLag:     access.DefaultMaxQueryLag,
		// The consortium's kept envelopes of unknown-outcome writes.
		CometUnsettled: ledger.DefaultUnsettled,
		BreakGlass:     "hospital",
		Shutdown:       15 * time.Second,
		LogFormat:      "text",
		RateLimit:      true,
		RateLimits:     ratelimit.DefaultConfig(),
	}
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	c.tlsFlags(fs)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public base URL (default http://<addr>)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (database, keys)")
	fs.StringVar(&c.DB, "db", c.DB, "database: a SQLite path or postgres://… (default <data>/healthgw.db)")
	fs.StringVar(&c.Ledger, "ledger", c.Ledger, "ledger backend: gormlog or comet")
	fs.StringVar(&c.CometHome, "comet-home", c.CometHome, "CometBFT home directory (with --ledger comet)")
	fs.Int64Var(&c.CometRetain, "comet-retain-blocks", c.CometRetain, "with --ledger comet: prune blocks older than this many (0 keeps all; keep at least one archive node)")
	fs.StringVar(&c.Custodian, "custodian", c.Custodian, "with --ledger comet: gateway ID of the consortium's patient custodian, the patient-facing member every patient's records and consents are sealed to (the same at every member; default: the first member in gateway ID order)")
	fs.IntVar(&c.CometUnsettled, "comet-unsettled-limit", c.CometUnsettled, "with --ledger comet: how many writes whose outcome is unknown (no quorum when they were sent) the gateway keeps in its database for their retries; at the limit new writes are refused with 503 until some settle")
	fs.DurationVar(&c.CometTimeout, "comet-append-timeout", c.CometTimeout, "with --ledger comet: how long an append waits to be committed before 503 (default 30s)")
	fs.StringVar(&c.Origin, "origin", c.Origin, "checkpoint origin line of a NEW log, fixed once the log exists (default: the checkpoint key's name; with --base-url, <host>/<path>/ledger)")
	fs.BoolVar(&c.DevIdP, "dev-idp", c.DevIdP, "accept patient tokens from the local development IdP (disable in production)")
	fs.StringVar(&c.PatientIss, "patient-issuer", c.PatientIss, "patient identity provider issuer URL")
	fs.StringVar(&c.PatientJWKS, "patient-jwks", c.PatientJWKS, "patient identity provider JWKS file or URL")
	fs.StringVar(&c.PatientClientID, "patient-client-id", c.PatientClientID, "patient app: OIDC client ID at --patient-issuer")
	fs.StringVar(&c.PatientClientSecret, "patient-client-secret", c.PatientClientSecret, "patient app: OIDC client secret (prefer HEALTHGW_PATIENT_CLIENT_SECRET)")
	fs.StringVar(&c.PatientRedirect, "patient-redirect-url", c.PatientRedirect, "patient app: OIDC redirect URL (default <base-url>/app/callback)")
	fs.StringVar(&c.ConsoleIss, "console-issuer", c.ConsoleIss, "regulator console: staff OIDC issuer URL")
	fs.StringVar(&c.ConsoleClientID, "console-client-id", c.ConsoleClientID, "regulator console: OIDC client ID")
	fs.StringVar(&c.ConsoleClientSecret, "console-client-secret", c.ConsoleClientSecret, "regulator console: OIDC client secret (prefer HEALTHGW_CONSOLE_CLIENT_SECRET)")
	fs.StringVar(&c.ConsoleRedirect, "console-redirect-url", c.ConsoleRedirect, "regulator console: OIDC redirect URL (default <base-url>/console/callback)")
	fs.StringVar(&c.ConsoleOrg, "console-org", c.ConsoleOrg, "regulator console: the registered regulator org its staff act for (required with --console-issuer)")
	fs.Int64Var(&c.MaxRecord, "max-record-bytes", c.MaxRecord, "largest record accepted, and the largest a JSON read (GET /v1/records/{id}) answers inline")
	fs.Int64Var(&c.MaxStreamRecord, "max-stream-record-bytes", c.MaxStreamRecord, "largest record a streamed upload (POST /v1/records/upload) accepts; at least --max-record-bytes")
	fs.Uint64Var(&c.AuditMaxLag, "audit-max-lag", c.AuditMaxLag, "ledger entries not yet in the access log that an access-log or audit query waits for; beyond, it answers 503 catching_up (Retry-After) instead of an incomplete log")
	fs.StringVar(&c.BreakGlass, "break-glass-kinds", c.BreakGlass, "org kinds allowed emergency access without consent (comma-separated, empty for none)")
	fs.StringVar(&c.ZKKeys, "zk-keys", c.ZKKeys, "directory of Groth16 keys (default <data>/zk)")
	fs.BoolVar(&c.ZKDevSetup, "zk-dev-setup", c.ZKDevSetup, "if --zk-keys holds no keys, run a single-party DEVELOPMENT setup in the background (disable in production; use a ceremony)")
	fs.BoolVar(&c.HTTPJWKS, "allow-http-jwks", c.HTTPJWKS, "DEVELOPMENT ONLY: fetch organisation and patient IdP JWKS URLs over plain http (default: https only)")
	fs.DurationVar(&c.RevocationRefresh, "revocation-refresh", c.RevocationRefresh, "how often to reload revoked access tokens written by other replicas sharing the database (0: 1s; negative: never)")
	fs.DurationVar(&c.Shutdown, "shutdown-timeout", c.Shutdown, "grace period for in-flight requests on shutdown")
	fs.Var(&c.Witnesses, "witness", "a witness to submit each checkpoint to, as <cosignature verifier key>@<url>; repeatable (C2SP tlog-witness)")
	fs.IntVar(&c.WitnessThreshold, "witness-threshold", c.WitnessThreshold, "witness cosignatures each checkpoint should carry (default: every --witness); the console's ledger status says whether it does")
	c.operationsFlags(fs)
	c.debugFlags(fs)
}

// finish fills derived defaults and validates.
func (c *serveConfig) finish() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", c.Addr, err)
	}
	baseURLGiven := c.BaseURL != ""
	if c.BaseURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.BaseURL = "http://" + net.JoinHostPort(host, port)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if err := c.finishTLS(baseURLGiven); err != nil {
		return err
	}
	if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("--base-url must be an http(s) URL")
	}
	if c.DataDir == "" {
		return fmt.Errorf("--data must not be empty")
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.DataDir, "healthgw.db")
	}
	if c.ZKKeys == "" {
		c.ZKKeys = filepath.Join(c.DataDir, "zk")
	}
	// The origin is fixed when the log is created and never derived from
	// the listening address: a restart on another port keeps it.
	switch {
	case c.Origin != "":
		c.KeyName = c.Origin
	case baseURLGiven:
		// C2SP tlog-tiles: the origin is the log's URL prefix without
		// the scheme; the tiles live under <base URL>/ledger/.
		c.KeyName = strings.TrimPrefix(strings.TrimPrefix(c.BaseURL, "https://"), "http://") + "/ledger"
	}
	switch c.Ledger {
	case "gormlog":
		if c.Custodian != "" {
			return fmt.Errorf("--custodian is for a consortium (--ledger comet)")
		}
	case "comet":
		if c.CometHome == "" {
			return fmt.Errorf("--ledger comet needs --comet-home")
		}
	default:
		return fmt.Errorf("--ledger must be gormlog or comet, not %q", c.Ledger)
	}
	if c.CometUnsettled < 1 || c.CometUnsettled > 1_000_000 {
		return fmt.Errorf("--comet-unsettled-limit must be between 1 and 1000000")
	}
	if c.AuditMaxLag < 1 {
		return fmt.Errorf("--audit-max-lag must be at least 1")
	}
	if c.MaxRecord <= 0 || c.MaxRecord > 1<<30 {
		return fmt.Errorf("--max-record-bytes must be between 1 and 1 GiB")
	}
	if c.MaxStreamRecord < c.MaxRecord || c.MaxStreamRecord > maxStreamRecord {
		return fmt.Errorf("--max-stream-record-bytes must be between --max-record-bytes (%d) and 1 TiB", c.MaxRecord)
	}
	if (c.PatientIss == "") != (c.PatientJWKS == "") {
		return fmt.Errorf("--patient-issuer and --patient-jwks go together")
	}
	if !c.DevIdP && c.PatientIss == "" {
		return fmt.Errorf("patients need an identity provider: set --patient-issuer and --patient-jwks, or --dev-idp")
	}
	if (c.PatientClientID != "") && c.PatientIss == "" {
		return fmt.Errorf("--patient-client-id needs --patient-issuer")
	}
	if (c.ConsoleIss == "") != (c.ConsoleClientID == "") {
		return fmt.Errorf("--console-issuer and --console-client-id go together")
	}
	if c.ConsoleIss != "" && c.ConsoleOrg == "" {
		return fmt.Errorf("--console-issuer needs --console-org (the regulator organisation its staff act for)")
	}
	if _, err := breakGlassPolicy(c.BreakGlass); err != nil {
		return err
	}
	if _, err := c.witnessEndpoints(); err != nil {
		return err
	}
	if c.WitnessThreshold < 0 || c.WitnessThreshold > len(c.Witnesses) {
		return fmt.Errorf("--witness-threshold %d: between 0 (every witness) and the %d witnesses given", c.WitnessThreshold, len(c.Witnesses))
	}
	if err := c.RateLimits.Validate(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	if err := c.finishDebug(); err != nil {
		return err
	}
	_ = database.DialectOf(c.DB)
	return nil
}

// applyConfigFile sets flags from a file of `name = value` lines (# starts
// a comment). Flags already given on the command line or through the
// environment win; the file only fills the rest.
func applyConfigFile(fs *flag.FlagSet, path string, explicit map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value", path, n)
		}
		name, value = strings.TrimSpace(name), strings.Trim(strings.TrimSpace(value), `"`)
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, n, name)
		}
		if explicit[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
	}
	return sc.Err()
}

func dialectName(dsn string) string { return string(database.DialectOf(dsn)) }

// checkpointKeyName is the name of a checkpoint key created now, and so
// the origin of a log created with it: cfg.KeyName, else "healthgw/"
// and a random tag (unique per log, independent of the address).
func checkpointKeyName(cfg serveConfig) string {
	if cfg.KeyName != "" {
		return cfg.KeyName
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "healthgw/" + hex.EncodeToString(b[:])
}

// witnessEndpoints parses the --witness values.
func (c *serveConfig) witnessEndpoints() ([]witness.Endpoint, error) {
	var out []witness.Endpoint
	for _, s := range c.Witnesses {
		ep, err := witness.ParseEndpoint(s)
		if err != nil {
			return nil, fmt.Errorf("--witness: %w", err)
		}
		out = append(out, ep)
	}
	return out, nil
}
