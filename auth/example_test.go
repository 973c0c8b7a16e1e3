package auth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

// An organisation exchanges a client assertion for an access token, and
// the access token authenticates it.
func Example() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	cfg := auth.Config{Issuer: "https://gateway.example", Now: now}

	// The gateway's access-token key (LoadOrCreateSigningKey in a server).
	k, _ := auth.GenerateSigningKey(auth.SigningAlg)
	key, _ := auth.NewSigningKey(k)

	// A registered hospital: its public keys are in the registry, the
	// private key stays with the hospital.
	hospKey, _ := auth.GenerateSigningKey("ES384")
	jwks, _ := auth.PublicJWKS(hospKey)
	orgs := authtest.NewOrgs()
	orgs.Put(auth.Org{ID: "hosp-a", Name: "Hospital A", Kind: auth.KindHospital,
		Scopes: auth.KindScopes[auth.KindHospital], JWKS: string(jwks)})

	x, _ := auth.NewExchanger(cfg, key, orgs, authtest.NewReplay(now))
	authn, _ := auth.NewAuthenticator(cfg, key)

	assertion, _ := auth.NewClientAssertion(hospKey, "hosp-a", x.TokenEndpoint(), now(), 0)
	at, err := x.Exchange(ctx, auth.TokenRequest{
		GrantType:           auth.GrantClientCredentials,
		ClientAssertionType: auth.AssertionTypeJWTBearer,
		ClientAssertion:     assertion,
		Scope:               "system/records.read",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := authn.Authenticate(ctx, at.Token)
	fmt.Println(at.TokenType, at.ExpiresIn, at.Scope)
	fmt.Println(p.Org, p.Kind, p.HasScope(auth.ScopeRecordsRead), p.HasScope(auth.ScopeRecordsWrite), err)

	// The same assertion again is a replay.
	_, err = x.Exchange(ctx, auth.TokenRequest{
		GrantType:           auth.GrantClientCredentials,
		ClientAssertionType: auth.AssertionTypeJWTBearer,
		ClientAssertion:     assertion,
	})
	var oe *auth.OAuthError
	if errors.As(err, &oe) {
		fmt.Println(oe.Code)
	}
	// Output:
	// Bearer 300 system/records.read
	// hosp-a hospital true false <nil>
	// invalid_client
}
