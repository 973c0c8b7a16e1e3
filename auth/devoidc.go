package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The development IdP as an OpenID Connect provider (authorization code
// flow with PKCE, S256 only). It serves, under its issuer URL:
//
//	/.well-known/openid-configuration  discovery
//	/authorize                         a "sign in as …" page (GET), and its form (POST)
//	/token                             code → ID token (+ patient access token)
//	/jwks                              the signing key (the dev IdP key)
//
// Clients are registered in DevOIDCConfig; they authenticate at the token
// endpoint with client_secret_basic or client_secret_post. Codes are
// single-use, expire after DevOIDCCodeTTL and are bound to the client, the
// redirect URI and the PKCE challenge.
//
// Two kinds of user sign in: a patient (the default; sub is the patient
// ID) and, when the request's scope contains ScopeDevStaff, regulator
// staff (sub is the staff member, claim ClaimStaffOrg their regulator
// organisation). It is for development and tests only: anyone can sign in
// as anyone.

// DevOIDCPath is where the gateway mounts the development OIDC provider;
// its issuer is the gateway's base URL followed by DevOIDCPath.
const DevOIDCPath = "/dev-idp"

// DevOIDCCodeTTL bounds the life of an authorization code.
const DevOIDCCodeTTL = time.Minute

// ScopeDevStaff asks the development IdP for a regulator staff login.
const ScopeDevStaff = "healthgw.staff"

// Claims the development IdP adds to ID tokens.
const (
	// ClaimRole is "patient" or "staff".
	ClaimRole = "healthgw_role"
	// ClaimStaffOrg names a staff member's regulator organisation.
	ClaimStaffOrg = "healthgw_org"
)

// DevOIDCClient is a client registered with the development IdP.
type DevOIDCClient struct {
	ID           string
	Secret       string
	RedirectURIs []string
}

// DevOIDCConfig configures the development OIDC provider.
type DevOIDCConfig struct {
	// Issuer is the provider's issuer URL (the gateway's base URL +
	// DevOIDCPath).
	Issuer string
	// Audience is the aud of the patient access tokens the token endpoint
	// also returns (the gateway's base URL), so that API clients using
	// this flow get a token the gateway accepts.
	Audience string
	Clients  []DevOIDCClient
	// DefaultStaffOrg prefills the staff login form (optional).
	DefaultStaffOrg func(ctx context.Context) string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DevOIDC is the development OIDC provider; it is an http.Handler to be
// mounted at the issuer's path (DevOIDCPath), which it strips itself.
type DevOIDC struct {
	idp   *DevIdP
	cfg   DevOIDCConfig
	path  string
	formK []byte // authenticates the login form's hidden fields

	mu    sync.Mutex
	codes map[string]devCode
}

type devCode struct {
	client, redirect, challenge, nonce string
	sub, role, org                     string
	expires                            time.Time
}

// OIDC returns the development OIDC provider for the IdP's key.
func (d *DevIdP) OIDC(cfg DevOIDCConfig) (*DevOIDC, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errReason("dev OIDC: issuer must be an http(s) URL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return &DevOIDC{idp: d, cfg: cfg, path: strings.TrimRight(u.Path, "/"), formK: k, codes: map[string]devCode{}}, nil
}

// PatientIdP returns the configuration under which the gateway accepts
// the access tokens this provider issues (iss = its issuer).
func (o *DevOIDC) PatientIdP() PatientIdP {
	p := o.idp.PatientIdP(o.cfg.Audience)
	p.Issuer = o.cfg.Issuer
	return p
}

func (o *DevOIDC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch p := strings.TrimPrefix(r.URL.Path, o.path); {
	case p == "/.well-known/openid-configuration" && r.Method == http.MethodGet:
		o.discovery(w)
	case p == "/jwks" && r.Method == http.MethodGet:
		o.jwks(w)
	case p == "/authorize" && r.Method == http.MethodGet:
		o.authorizePage(w, r)
	case p == "/authorize" && r.Method == http.MethodPost:
		o.authorizeSubmit(w, r)
	case p == "/token" && r.Method == http.MethodPost:
		o.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (o *DevOIDC) discovery(w http.ResponseWriter) {
	iss := o.cfg.Issuer
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{o.idp.key.Algorithm()},
		"scopes_supported":                      []string{"openid", ScopeDevStaff},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nonce", ClaimRole, ClaimStaffOrg},
	})
}

func (d *DevIdP) publicJWKS() ([]byte, error) { return json.Marshal(d.key.PublicJWKS()) }

func (o *DevOIDC) jwks(w http.ResponseWriter) {
	b, err := o.idp.publicJWKS()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(b)
}

// authzRequest is the validated part of an authorization request.
type authzRequest struct {
	ClientID, RedirectURI, Scope, State, Nonce, Challenge string
}

func (a authzRequest) staff() bool { return slices.Contains(strings.Fields(a.Scope), ScopeDevStaff) }

func (a authzRequest) values() url.Values {
	return url.Values{"client_id": {a.ClientID}, "redirect_uri": {a.RedirectURI}, "scope": {a.Scope},
		"state": {a.State}, "nonce": {a.Nonce}, "code_challenge": {a.Challenge}}
}

func (o *DevOIDC) client(id string) (DevOIDCClient, bool) {
	for _, c := range o.cfg.Clients {
		if c.ID == id {
			return c, true
		}
	}
	return DevOIDCClient{}, false
}

// parseAuthz validates an authorization request. Errors before the
// redirect URI is known to be registered are shown, never redirected.
func (o *DevOIDC) parseAuthz(v url.Values) (authzRequest, string) {
	a := authzRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), Scope: v.Get("scope"),
		State: v.Get("state"), Nonce: v.Get("nonce"), Challenge: v.Get("code_challenge")}
	c, ok := o.client(a.ClientID)
	switch {
	case !ok:
		return a, "unknown client_id"
	case !slices.Contains(c.RedirectURIs, a.RedirectURI):
		return a, "redirect_uri is not registered for this client"
	case v.Get("response_type") != "code" && v.Get("response_type") != "":
		return a, "only response_type=code is supported"
	case !slices.Contains(strings.Fields(a.Scope), "openid"):
		return a, "scope must include openid"
	case v.Get("code_challenge_method") != "S256" && v.Get("code_challenge_method") != "":
		return a, "only code_challenge_method=S256 is supported"
	case len(a.Challenge) < 43 || len(a.Challenge) > 128:
		return a, "a PKCE code_challenge (S256) is required"
	case a.State == "" || len(a.State) > 512 || len(a.Nonce) > 512:
		return a, "state is required (at most 512 characters), nonce at most 512"
	}
	return a, ""
}

func (o *DevOIDC) formMAC(a authzRequest) string {
	m := hmac.New(sha256.New, o.formK)
	m.Write([]byte(a.values().Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var devLoginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in</title></head>
<body><main>
<h1>Development identity provider</h1>
<p>This sign-in page is for development only: anyone can sign in as anyone. Production gateways use the patient's and the regulator's own identity providers.</p>
{{if .Error}}<p role="alert"><strong>{{.Error}}</strong></p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
{{if .Staff}}
<p><label for="staff">Sign in as regulator staff member</label><br><input id="staff" name="staff" value="auditor-1" required autocomplete="username"></p>
<p><label for="org">Regulator organisation ID</label><br><input id="org" name="org" value="{{.Org}}" required></p>
<p><button type="submit" id="signin">Sign in as regulator staff</button></p>
{{else}}
<p><label for="patient">Sign in as patient (patient ID)</label><br><input id="patient" name="patient" value="patient-1" required autocomplete="username"></p>
<p><button type="submit" id="signin">Sign in as patient</button></p>
{{end}}
</form></main></body></html>`))

func (o *DevOIDC) loginHeaders(w http.ResponseWriter, redirect string) {
	formAction := "'self'"
	if u, err := url.Parse(redirect); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

func (o *DevOIDC) showLogin(w http.ResponseWriter, r *http.Request, a authzRequest, status int, msg string) {
	o.loginHeaders(w, a.RedirectURI)
	hidden := map[string]string{"mac": o.formMAC(a)}
	for k, v := range a.values() {
		hidden[k] = v[0]
	}
	org := ""
	if a.staff() && o.cfg.DefaultStaffOrg != nil {
		org = o.cfg.DefaultStaffOrg(r.Context())
	}
	w.WriteHeader(status)
	_ = devLoginPage.Execute(w, map[string]any{"Action": o.path + "/authorize", "Hidden": hidden, "Staff": a.staff(), "Org": org, "Error": msg})
}

func (o *DevOIDC) authorizePage(w http.ResponseWriter, r *http.Request) {
	a, bad := o.parseAuthz(r.URL.Query())
	if bad != "" {
		http.Error(w, "invalid authorization request: "+bad, http.StatusBadRequest)
		return
	}
	o.showLogin(w, r, a, http.StatusOK, "")
}

func (o *DevOIDC) authorizeSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form", http.StatusBadRequest)
		return
	}
	a, bad := o.parseAuthz(r.PostForm)
	if bad != "" {
		http.Error(w, "invalid authorization request: "+bad, http.StatusBadRequest)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("mac")), []byte(o.formMAC(a))) != 1 {
		http.Error(w, "the sign-in form was not issued by this provider", http.StatusBadRequest)
		return
	}
	c := devCode{client: a.ClientID, redirect: a.RedirectURI, challenge: a.Challenge, nonce: a.Nonce,
		expires: o.cfg.Now().Add(DevOIDCCodeTTL)}
	if a.staff() {
		c.role, c.sub, c.org = "staff", strings.TrimSpace(r.PostForm.Get("staff")), strings.TrimSpace(r.PostForm.Get("org"))
		if !validPatientID(c.sub) || !orgIDPattern.MatchString(c.org) {
			o.showLogin(w, r, a, http.StatusBadRequest, "Enter a staff name (no spaces) and a valid organisation ID.")
			return
		}
	} else {
		c.role, c.sub = "patient", strings.TrimSpace(r.PostForm.Get("patient"))
		if !validPatientID(c.sub) {
			o.showLogin(w, r, a, http.StatusBadRequest, "A patient ID is 1-255 printable characters without spaces.")
			return
		}
	}
	code := newJTI() + newJTI()
	o.mu.Lock()
	now := o.cfg.Now()
	for k, v := range o.codes { // drop expired codes
		if now.After(v.expires) {
			delete(o.codes, k)
		}
	}
	o.codes[code] = c
	o.mu.Unlock()
	u, _ := url.Parse(a.RedirectURI)
	q := u.Query()
	q.Set("code", code)
	q.Set("state", a.State)
	q.Set("iss", o.cfg.Issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="dev-idp"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (o *DevOIDC) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, CodeInvalidRequest, "malformed form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := o.client(id)
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		tokenError(w, http.StatusUnauthorized, CodeInvalidClient, "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	o.mu.Lock()
	code, ok := o.codes[r.PostForm.Get("code")]
	delete(o.codes, r.PostForm.Get("code")) // single use, even when the rest fails
	o.mu.Unlock()
	now := o.cfg.Now()
	verifier := r.PostForm.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	switch {
	case !ok || now.After(code.expires) || code.client != c.ID:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case r.PostForm.Get("redirect_uri") != code.redirect:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
		return
	case len(verifier) < 43 || len(verifier) > 128 ||
		subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(code.challenge)) != 1:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}
	ttl := DefaultPatientTokenTTL
	claims := map[string]any{
		"iss": o.cfg.Issuer, "sub": code.sub, "aud": c.ID, "jti": newJTI(),
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "auth_time": now.Unix(), ClaimRole: code.role,
	}
	if code.nonce != "" {
		claims["nonce"] = code.nonce
	}
	if code.org != "" {
		claims[ClaimStaffOrg] = code.org
	}
	idToken, err := o.idp.key.sign(typJWT, claims)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, CodeServerError, "internal error")
		return
	}
	resp := map[string]any{"id_token": idToken, "token_type": "Bearer", "expires_in": int(ttl.Seconds())}
	if code.role == "patient" {
		at, err := o.idp.key.sign(typJWT, map[string]any{
			"iss": o.cfg.Issuer, "sub": code.sub, "aud": o.cfg.Audience, "jti": newJTI(),
			"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
		})
		if err != nil {
			tokenError(w, http.StatusInternalServerError, CodeServerError, "internal error")
			return
		}
		resp["access_token"] = at
	} else {
		// Staff get no API token from the development IdP: the console
		// acts through the gateway's use-case services.
		resp["access_token"] = newJTI()
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}
