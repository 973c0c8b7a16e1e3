package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig is an OpenID Connect relying party: the IdP's issuer (its
// discovery document is at Issuer/.well-known/openid-configuration), this
// gateway's client registration with it, and the redirect URL (the
// area's /callback).
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// Scopes beyond "openid".
	Scopes []string
}

func (c OIDCConfig) validate(what string) error {
	switch {
	case c.Issuer == "":
		return fmt.Errorf("web: %s sign-in: an issuer is required", what)
	case c.ClientID == "":
		return fmt.Errorf("web: %s sign-in: a client ID is required", what)
	case c.RedirectURL == "":
		return fmt.Errorf("web: %s sign-in: a redirect URL is required", what)
	}
	return nil
}

// relyingParty discovers its provider on first use, not at start: the
// provider may be down when the gateway starts (or be the gateway itself,
// the development IdP, which is not listening yet). A failed discovery is
// retried on the next sign-in.
type relyingParty struct {
	cfg    OIDCConfig
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// errIdPUnavailable: discovery or the token exchange failed.
var errIdPUnavailable = errors.New("web: identity provider unavailable")

func (rp *relyingParty) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, rp.client)
}

func (rp *relyingParty) provider(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.oauth != nil {
		return rp.oauth, rp.verifier, nil
	}
	p, err := oidc.NewProvider(rp.ctx(ctx), rp.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: discovery: %w", errIdPUnavailable, err)
	}
	rp.oauth = &oauth2.Config{
		ClientID: rp.cfg.ClientID, ClientSecret: rp.cfg.ClientSecret, RedirectURL: rp.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, rp.cfg.Scopes...),
	}
	rp.verifier = p.Verifier(&oidc.Config{ClientID: rp.cfg.ClientID})
	return rp.oauth, rp.verifier, nil
}

// authCodeURL starts a sign-in: the URL to send the browser to.
func (rp *relyingParty) authCodeURL(ctx context.Context, l *login) (string, error) {
	oc, _, err := rp.provider(ctx)
	if err != nil {
		return "", err
	}
	return oc.AuthCodeURL(l.State, oidc.Nonce(l.Nonce), oauth2.S256ChallengeOption(l.Verifier)), nil
}

// identity is what a verified ID token says.
type identity struct {
	Subject string
	Role    string
	Org     string
}

// exchange redeems the code (with the PKCE verifier) and verifies the ID
// token: signature, issuer, audience, expiry and the nonce. The tokens
// themselves go no further than this function.
func (rp *relyingParty) exchange(ctx context.Context, l *login, code string) (identity, error) {
	oc, v, err := rp.provider(ctx)
	if err != nil {
		return identity{}, err
	}
	tok, err := oc.Exchange(rp.ctx(ctx), code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return identity{}, fmt.Errorf("%w: token exchange: %w", errSignInFailed, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return identity{}, fmt.Errorf("%w: no id_token", errSignInFailed)
	}
	idt, err := v.Verify(rp.ctx(ctx), raw)
	if err != nil {
		return identity{}, fmt.Errorf("%w: id_token: %w", errSignInFailed, err)
	}
	if idt.Nonce != l.Nonce {
		return identity{}, fmt.Errorf("%w: nonce mismatch", errSignInFailed)
	}
	var claims struct {
		Role string `json:"healthgw_role"`
		Org  string `json:"healthgw_org"`
	}
	if err := idt.Claims(&claims); err != nil {
		return identity{}, fmt.Errorf("%w: claims: %w", errSignInFailed, err)
	}
	return identity{Subject: idt.Subject, Role: claims.Role, Org: claims.Org}, nil
}
