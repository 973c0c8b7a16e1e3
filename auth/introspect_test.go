package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
)

// revocations is an in-memory auth.Revocations.
type revocations struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *revocations) Revoke(_ context.Context, jti string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]time.Time{}
	}
	if until.After(r.m[jti]) {
		r.m[jti] = until
	}
	return nil
}

func (r *revocations) Revoked(_ context.Context, jti string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[jti]
	return ok, nil
}

// TestIntrospectAndRevoke: a client introspects its own token (active),
// learns nothing about another client's, cannot revoke another client's,
// and once it revokes its own the token no longer authenticates and
// introspects inactive.
func TestIntrospectAndRevoke(t *testing.T) {
	f := newFixture(t)
	rev := &revocations{}
	w := f.world(t, nil, func(c *auth.Config) { c.Revocations = rev })
	at := w.exchange(t, f.a, "system/records.read")
	ctx := t.Context()

	info, err := w.authn.Introspect(ctx, "hosp-a", at.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Active || info.ClientID != "hosp-a" || info.Scope != "system/records.read" || info.TokenType != "Bearer" ||
		info.JTI == "" || !info.Expires.After(w.clock.Now()) || info.Issuer != issuer || info.OrgKind != auth.KindHospital {
		t.Errorf("own token introspected as %+v", info)
	}
	for name, tok := range map[string]string{
		"another client's token": at.Token,
		"garbage":                "not-a-token",
		"a client assertion":     f.b.Assertion(t, tokenURL, t0),
		"a patient token":        w.patientToken(t),
	} {
		if info, err := w.authn.Introspect(ctx, "hosp-b", tok); err != nil || info.Active {
			t.Errorf("%s introspected by hosp-b: %+v, %v; want inactive", name, info, err)
		}
	}

	err = w.authn.Revoke(ctx, "hosp-b", at.Token)
	if !errors.Is(err, auth.ErrNotTokenOwner) || oauthCode(t, err) != "unauthorized_client" {
		t.Errorf("hosp-b revoking hosp-a's token: %v, want unauthorized_client", err)
	}
	if _, err := w.authn.Authenticate(ctx, at.Token); err != nil {
		t.Fatalf("token stopped working after a refused revocation: %v", err)
	}
	for _, tok := range []string{"garbage", w.patientToken(t), ""} {
		if err := w.authn.Revoke(ctx, "hosp-a", tok); err != nil {
			t.Errorf("revoking an unknown token: %v, want nil (RFC 7009)", err)
		}
	}
	if err := w.authn.Revoke(ctx, "hosp-a", at.Token); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := w.authn.Revoke(ctx, "hosp-a", at.Token); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	_, err = w.authn.Authenticate(ctx, at.Token)
	if oauthCode(t, err) != auth.CodeInvalidToken {
		t.Errorf("revoked token authenticates: %v", err)
	}
	if info, err := w.authn.Introspect(ctx, "hosp-a", at.Token); err != nil || info.Active {
		t.Errorf("revoked token introspects as %+v, %v", info, err)
	}
	// Another token of the same client is unaffected.
	other := w.exchange(t, f.a, "")
	if _, err := w.authn.Authenticate(ctx, other.Token); err != nil {
		t.Errorf("another token of the client: %v", err)
	}
}

// TestRevokeUnsupported: without a revocation store, Revoke says so.
func TestRevokeUnsupported(t *testing.T) {
	f := newFixture(t)
	w := f.world(t, nil)
	at := w.exchange(t, f.a, "")
	if got := oauthCode(t, w.authn.Revoke(t.Context(), "hosp-a", at.Token)); got != "unsupported_token_type" {
		t.Errorf("Revoke without a store: %q", got)
	}
}

// TestAuthenticateClient: client authentication for the introspection and
// revocation endpoints takes the same assertions as the token endpoint,
// also with that endpoint's URL as aud, and uses up their jti.
func TestAuthenticateClient(t *testing.T) {
	f := newFixture(t)
	introspect := issuer + auth.IntrospectionPath
	tests := []struct {
		name     string
		typ      string
		tok      func(w *world) string
		wantCode string
	}{
		{"aud = the endpoint", auth.AssertionTypeJWTBearer, func(w *world) string { return f.a.Assertion(t, introspect, t0) }, ""},
		{"aud = the issuer", auth.AssertionTypeJWTBearer, func(w *world) string { return f.a.Assertion(t, issuer, t0) }, ""},
		{"aud = the token endpoint", auth.AssertionTypeJWTBearer, func(w *world) string { return f.a.Assertion(t, tokenURL, t0) }, ""},
		{"aud = the revocation endpoint", auth.AssertionTypeJWTBearer, func(w *world) string { return f.a.Assertion(t, issuer+auth.RevocationPath, t0) }, auth.CodeInvalidClient},
		{"no assertion", "", func(w *world) string { return "" }, auth.CodeInvalidClient},
		{"wrong assertion type", "urn:x", func(w *world) string { return f.a.Assertion(t, introspect, t0) }, auth.CodeInvalidRequest},
		{"an access token", auth.AssertionTypeJWTBearer, func(w *world) string { return w.exchange(t, f.a, "").Token }, auth.CodeInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.world(t, nil)
			tok := tt.tok(w)
			o, err := w.x.AuthenticateClient(t.Context(), tt.typ, tok, "", introspect)
			if got := oauthCode(t, err); got != tt.wantCode {
				t.Fatalf("AuthenticateClient: code %q, want %q (%v)", got, tt.wantCode, err)
			}
			if err != nil {
				return
			}
			if o.ID != "hosp-a" {
				t.Errorf("authenticated as %q", o.ID)
			}
			if _, err := w.x.AuthenticateClient(t.Context(), tt.typ, tok, "", introspect); !errors.Is(err, auth.ErrReplay) {
				t.Errorf("second use of the assertion: %v, want ErrReplay", err)
			}
		})
	}
}
