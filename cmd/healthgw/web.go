package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/registry/registrystore"
	"github.com/healthgw/healthgw/web"
)

// Development OIDC clients of the patient app and the console, registered
// with the development IdP (their secrets are random per start and never
// leave the process).
const (
	devAppClient     = "healthgw-app"
	devConsoleClient = "healthgw-console"
)

// devOIDC builds the development IdP's OpenID Connect provider, with the
// app's and the console's clients registered.
func (g *gateway) openDevOIDC() error {
	base := g.cfg.BaseURL
	g.devSecrets = [2]string{randomSecret(), randomSecret()}
	o, err := g.devIdP.OIDC(auth.DevOIDCConfig{
		Issuer:   base + auth.DevOIDCPath,
		Audience: base,
		Clients: []auth.DevOIDCClient{
			{ID: devAppClient, Secret: g.devSecrets[0], RedirectURIs: []string{base + "/app/callback"}},
			{ID: devConsoleClient, Secret: g.devSecrets[1], RedirectURIs: []string{base + "/console/callback"}},
		},
		DefaultStaffOrg: func(ctx context.Context) string {
			regs, err := g.registry.List(ctx)
			if err != nil {
				return ""
			}
			for _, r := range regs {
				if r.Org.Kind == auth.KindRegulator {
					return r.Org.ID
				}
			}
			return ""
		},
		Now: g.clock.Now,
	})
	if err != nil {
		return err
	}
	g.devOIDC = o
	return nil
}

// webConfig derives the web front doors' sign-in from the configuration:
// a configured IdP with a client registration wins; with --dev-idp the
// development IdP fills in what is not configured.
func (g *gateway) webConfig() web.Config {
	cfg := g.cfg
	wc := web.Config{BaseURL: cfg.BaseURL, CheckpointKey: g.vkey, ConsoleOrg: cfg.ConsoleOrg, Now: g.clock.Now, Logger: g.log,
		WitnessThreshold: cfg.WitnessThreshold}
	for _, w := range cfg.Witnesses {
		vkey, _, _ := strings.Cut(w, "@") // validated by serveConfig.finish
		wc.Witnesses = append(wc.Witnesses, vkey)
	}
	redirect := func(v, path string) string {
		if v != "" {
			return v
		}
		return cfg.BaseURL + path
	}
	switch {
	case cfg.PatientIss != "" && cfg.PatientClientID != "":
		wc.Patient = web.OIDCConfig{Issuer: cfg.PatientIss, ClientID: cfg.PatientClientID, ClientSecret: cfg.PatientClientSecret,
			RedirectURL: redirect(cfg.PatientRedirect, "/app/callback")}
	case g.devOIDC != nil:
		wc.Patient = web.OIDCConfig{Issuer: cfg.BaseURL + auth.DevOIDCPath, ClientID: devAppClient, ClientSecret: g.devSecrets[0],
			RedirectURL: cfg.BaseURL + "/app/callback"}
	}
	switch {
	case cfg.ConsoleIss != "" && cfg.ConsoleClientID != "":
		wc.Console = web.OIDCConfig{Issuer: cfg.ConsoleIss, ClientID: cfg.ConsoleClientID, ClientSecret: cfg.ConsoleClientSecret,
			RedirectURL: redirect(cfg.ConsoleRedirect, "/console/callback")}
	case g.devOIDC != nil:
		wc.Console = web.OIDCConfig{Issuer: cfg.BaseURL + auth.DevOIDCPath, ClientID: devConsoleClient, ClientSecret: g.devSecrets[1],
			RedirectURL: cfg.BaseURL + "/console/callback", Scopes: []string{auth.ScopeDevStaff}}
	}
	return wc
}

// openWeb builds the patient app and the console over the same use-case
// services as the API, and the gateway's one handler.
func (g *gateway) openWeb() error {
	deps := web.Deps{
		Consents: g.consent, Changes: g.access, Orgs: g.registry, Ledger: g.ledger, Sync: g.follower, Pseud: g.pseud,
		CatchUp: g.queries,
	}
	if g.zk != nil {
		deps.Eligibility = g.zk
	}
	deps.Signing = webSigning{Service: g.access, store: g.consent}
	if g.witnesses != nil {
		deps.Cosigned = g.witnesses
	}
	w, err := web.New(g.webConfig(), deps)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	g.web = w
	mux := http.NewServeMux()
	for _, p := range []string{"/app/", "/app", "/console/", "/console", "/static/"} {
		mux.Handle(p, w.Handler())
	}
	if g.devOIDC != nil {
		mux.Handle(auth.DevOIDCPath+"/", g.devOIDC)
	}
	mux.Handle("/", g.api.Handler())
	g.handler = mux
	return nil
}

func randomSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var _ web.Orgs = (*registrystore.Store)(nil)

// webSigning is the patient app's passkey signing: the access service's
// signed changes and the consent projection's passkeys.
type webSigning struct {
	*access.Service
	store *consentstore.Store
}

// Passkeys are the patient's registered passkeys.
func (w webSigning) Passkeys(ctx context.Context, patient string) ([]consent.Passkey, error) {
	return w.store.Passkeys(ctx, patient)
}
