package auth_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
)

// FuzzAuthenticate: arbitrary bearer tokens never panic and are either
// accepted as a principal or refused with invalid_token; forged variants
// of a real token never authenticate as anything but its own principal.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	w := fx.world(f, nil)
	valid := w.exchange(f, fx.a, "").Token
	f.Add(valid)
	f.Add(authtest.Compact(f, map[string]any{"alg": "none", "kid": fx.signer.KeyID(), "typ": "at+jwt"}, map[string]any{"iss": issuer}, nil))
	f.Add(`{"protected":"e30","payload":"e30","signature":""}`)
	f.Add("e30.e30.")
	want, err := w.authn.Authenticate(f.Context(), valid)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := w.authn.Authenticate(t.Context(), tok)
		if err != nil {
			var oe *auth.OAuthError
			if !errors.As(err, &oe) || oe.Code != auth.CodeInvalidToken {
				t.Fatalf("Authenticate error %v is not invalid_token", err)
			}
			return
		}
		if tok != valid && (p.Org != want.Org || p.Kind != want.Kind || len(p.Scopes) != len(want.Scopes)) {
			t.Fatalf("a mutated token authenticated as %+v", p)
		}
	})
}

// FuzzExchange: arbitrary client assertions never panic and never yield
// a token, except the one valid assertion (once).
func FuzzExchange(f *testing.F) {
	fx := newFixture(f)
	valid := fx.a.Assertion(f, tokenURL, t0)
	f.Add(valid)
	f.Add(authtest.Compact(f, map[string]any{"alg": "none", "kid": fx.a.KeyID()}, fx.a.Claims(tokenURL, t0), nil))
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, tok string) {
		w := fx.world(t, nil)
		_, err := w.x.Exchange(t.Context(), assertionRequest(tok))
		if err == nil {
			if tok != valid {
				t.Fatalf("a mutated assertion was accepted")
			}
			return
		}
		var oe *auth.OAuthError
		if !errors.As(err, &oe) || (oe.Code != auth.CodeInvalidClient && oe.Code != auth.CodeInvalidRequest) {
			t.Fatalf("Exchange error %v is not invalid_client", err)
		}
	})
}
