package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/healthgw/healthgw/database"
)

// serveConfig is everything `healthgw serve` reads from flags, HEALTHGW_*
// environment variables and an optional configuration file, in that order
// of precedence, over the documented defaults.
type serveConfig struct {
	Addr         string        // listen address (default 127.0.0.1:8080)
	BaseURL      string        // public URL (default http://<addr>)
	DataDir      string        // data directory (default ./data)
	DB           string        // database DSN (default <data>/healthgw.db)
	Ledger       string        // gormlog (default) or comet
	CometHome    string        // CometBFT home for --ledger comet
	CometRetain  int64         // blocks to keep (0: all)
	CometTimeout time.Duration // how long an append waits for commit
	Origin       string        // checkpoint origin line
	DevIdP       bool          // mint patient tokens with a local development IdP
	PatientIss   string        // patient identity provider issuer
	PatientJWKS  string        // its JWKS file or URL
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
	BreakGlass          string // comma-separated org kinds allowed to break the glass
	ZKKeys              string // directory of Groth16 keys (default <data>/zk)
	ZKDevSetup          bool   // create development Groth16 keys when there are none
	Shutdown            time.Duration
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Addr:       "127.0.0.1:8080",
		DataDir:    "data",
		Ledger:     "gormlog",
		DevIdP:     true,
		ZKDevSetup: true,
		MaxRecord:  16 << 20,
		BreakGlass: "hospital",
		Shutdown:   15 * time.Second,
	}
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public base URL (default http://<addr>)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (database, keys)")
	fs.StringVar(&c.DB, "db", c.DB, "database: a SQLite path or postgres://… (default <data>/healthgw.db)")
	fs.StringVar(&c.Ledger, "ledger", c.Ledger, "ledger backend: gormlog or comet")
	fs.StringVar(&c.CometHome, "comet-home", c.CometHome, "CometBFT home directory (with --ledger comet)")
	fs.Int64Var(&c.CometRetain, "comet-retain-blocks", c.CometRetain, "with --ledger comet: prune blocks older than this many (0 keeps all; keep at least one archive node)")
	fs.DurationVar(&c.CometTimeout, "comet-append-timeout", c.CometTimeout, "with --ledger comet: how long an append waits to be committed before 503 (default 30s)")
	fs.StringVar(&c.Origin, "origin", c.Origin, "checkpoint origin line (default healthgw/<host:port>)")
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
	fs.Int64Var(&c.MaxRecord, "max-record-bytes", c.MaxRecord, "largest record accepted")
	fs.StringVar(&c.BreakGlass, "break-glass-kinds", c.BreakGlass, "org kinds allowed emergency access without consent (comma-separated, empty for none)")
	fs.StringVar(&c.ZKKeys, "zk-keys", c.ZKKeys, "directory of Groth16 keys (default <data>/zk)")
	fs.BoolVar(&c.ZKDevSetup, "zk-dev-setup", c.ZKDevSetup, "if --zk-keys holds no keys, run a single-party DEVELOPMENT setup in the background (disable in production; use a ceremony)")
	fs.DurationVar(&c.Shutdown, "shutdown-timeout", c.Shutdown, "grace period for in-flight requests on shutdown")
}

// finish fills derived defaults and validates.
func (c *serveConfig) finish() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", c.Addr, err)
	}
	if c.BaseURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.BaseURL = "http://" + net.JoinHostPort(host, port)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
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
	if c.Origin == "" {
		c.Origin = "healthgw/" + strings.TrimPrefix(strings.TrimPrefix(c.BaseURL, "https://"), "http://")
	}
	switch c.Ledger {
	case "gormlog":
	case "comet":
		if c.CometHome == "" {
			return fmt.Errorf("--ledger comet needs --comet-home")
		}
	default:
		return fmt.Errorf("--ledger must be gormlog or comet, not %q", c.Ledger)
	}
	if c.MaxRecord <= 0 || c.MaxRecord > 1<<30 {
		return fmt.Errorf("--max-record-bytes must be between 1 and 1 GiB")
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
