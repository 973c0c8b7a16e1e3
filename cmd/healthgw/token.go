package main

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
)

// defaultGatewayURL is the gateway's default base URL (serve's default).
const defaultGatewayURL = "http://127.0.0.1:8080"

func cmdToken(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw token", []command{
		{"patient", "mint a patient token with the development IdP", cmdTokenPatient},
		{"client", "sign a client assertion and exchange it for an access token", cmdTokenClient},
	}, args)
}

// maxPatientTokenTTL is the longest lifetime token patient mints.
const maxPatientTokenTTL = 24 * time.Hour

// cmdTokenPatient prints a patient token minted with the development IdP
// key under the data directory, which a gateway started with --dev-idp
// (the default) creates and then accepts the token; --create makes the key
// when no gateway has run there yet.
func cmdTokenPatient(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "token patient")
	id := fs.String("id", "", "patient ID (the token's sub)")
	data := fs.String("data", "data", "data directory (holds the development IdP key)")
	base := fs.String("url", defaultGatewayURL, "the gateway's base URL")
	aud := fs.String("aud", "", "audience (default --url)")
	ttl := fs.Duration("ttl", auth.DefaultPatientTokenTTL, "lifetime, more than 0 and at most "+maxPatientTokenTTL.String())
	create := fs.Bool("create", false, "create the development IdP key if --data holds none")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("token patient: --id is required")
	}
	if err := checkPatientTTL(*ttl); err != nil {
		return fmt.Errorf("token patient: %w", err)
	}
	if *aud == "" {
		*aud = strings.TrimRight(*base, "/")
	}
	path := auth.DevIdPKeyPath(*data)
	if _, err := os.Stat(path); errors.Is(err, iofs.ErrNotExist) && !*create {
		return fmt.Errorf("token patient: no development IdP key at %s: start `healthgw serve --data %s` (with --dev-idp) first, or pass --create", path, *data)
	}
	idp, err := auth.LoadOrCreateDevIdP(path)
	if err != nil {
		return fmt.Errorf("token patient: %w", err)
	}
	tok, err := idp.Mint(*id, *aud, time.Now(), *ttl)
	if err != nil {
		return fmt.Errorf("token patient: %w", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// checkPatientTTL refuses a lifetime that is not positive or above the
// maximum (rather than quietly minting a token of another lifetime).
func checkPatientTTL(ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return fmt.Errorf("--ttl %s: the lifetime must be more than 0 (e.g. 15m)", ttl)
	case ttl > maxPatientTokenTTL:
		return fmt.Errorf("--ttl %s: the lifetime must be at most %s", ttl, maxPatientTokenTTL)
	}
	return nil
}

// cmdTokenClient signs a client assertion with an org's private key and,
// unless --exchange=false, exchanges it at the token endpoint and prints
// the access token (only the token on stdout, for $(…)); with
// --exchange=false it prints the assertion.
func cmdTokenClient(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "token client")
	org := fs.String("org", "", "organisation ID (iss and sub)")
	keyPath := fs.String("key", "", "the org's private signing JWK (from org keygen)")
	base := fs.String("url", defaultGatewayURL, "the gateway's base URL")
	aud := fs.String("aud", "", "token endpoint URL: the assertion's aud and where it is posted (default <url>/oauth2/token)")
	scope := fs.String("scope", "", "scopes to request, comma- or space-separated (default all of the org's)")
	exchange := fs.Bool("exchange", true, "post the assertion and print the access token (false: print the assertion)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *org == "" || *keyPath == "" {
		return errors.New("token client: --org and --key are required")
	}
	if *aud == "" {
		*aud = strings.TrimRight(*base, "/") + auth.TokenPath
	}
	scopes, err := scopesFlag(*scope)
	if err != nil {
		return fmt.Errorf("token client: --scope: %w", err)
	}
	key, err := auth.ReadPrivateKey(*keyPath)
	if err != nil {
		return fmt.Errorf("token client: %w", err)
	}
	assertion, err := auth.NewClientAssertion(key, *org, *aud, time.Now(), 0)
	if err != nil {
		return fmt.Errorf("token client: %w", err)
	}
	if !*exchange {
		fmt.Fprintln(e.stdout, assertion)
		return nil
	}
	at, err := client.New(*base, &http.Client{Timeout: 15 * time.Second}).Exchange(ctx, *aud, assertion, auth.JoinScopes(scopes))
	if err != nil {
		return fmt.Errorf("token client: %w", err)
	}
	fmt.Fprintf(e.stderr, "access token for %s: expires in %d s, scope %q\n", *org, at.ExpiresIn, at.Scope)
	fmt.Fprintln(e.stdout, at.AccessToken)
	return nil
}
