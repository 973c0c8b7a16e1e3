package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// cmdTokenPatient prints a patient token minted with the development IdP
// key under the data directory (created on first use). A gateway started
// with --dev-idp over the same data directory accepts it.
func cmdTokenPatient(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "token patient")
	id := fs.String("id", "", "patient ID (the token's sub)")
	data := fs.String("data", "data", "data directory (holds the development IdP key)")
	base := fs.String("url", defaultGatewayURL, "the gateway's base URL")
	aud := fs.String("aud", "", "audience (default --url)")
	ttl := fs.Duration("ttl", auth.DefaultPatientTokenTTL, "lifetime")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("token patient: --id is required")
	}
	if *aud == "" {
		*aud = strings.TrimRight(*base, "/")
	}
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(*data))
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
