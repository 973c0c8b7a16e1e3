package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// Signing are the patient-signed consent changes and passkey
// registration (access.Service), with the registered passkeys
// (consentstore.Store). Without it the app makes unsigned changes only.
type Signing interface {
	PrepareGrant(ctx context.Context, patient string, g consent.Grant) (*access.PreparedChange, error)
	PrepareRevoke(ctx context.Context, patient, id string) (*access.PreparedChange, error)
	CommitSigned(ctx context.Context, pc *access.PreparedChange, att ledger.Attestation) (consent.Grant, access.Receipt, error)
	RegisterPasskey(ctx context.Context, patient string, p consent.Passkey) (uint64, error)
	PreparePasskey(ctx context.Context, patient string, p consent.Passkey) (*access.PreparedChange, error)
	Passkeys(ctx context.Context, patient string) ([]consent.Passkey, error)
}

// passkeyState is a patient's WebAuthn ceremonies in progress.
type passkeyState struct {
	// Registration is the registration ceremony's session data.
	Registration *webauthn.SessionData
	// Pending is the consent change waiting for the passkey's assertion.
	Pending *pendingChange
}

type pendingChange struct {
	ID      string
	Change  *access.PreparedChange
	Started time.Time
}

// pendingTimeout bounds how long a prepared change waits for its
// assertion.
const pendingTimeout = 5 * time.Minute

var (
	errNoPasskeys    = errors.New("web: passkeys are not available")
	errSignatureFail = errors.New("web: the passkey signature was not accepted")
)

// relyingParty returns the WebAuthn relying party: the gateway, RP ID the
// host of the base URL, origin the base URL's.
func (s *Server) webAuthn() (*webauthn.WebAuthn, string, error) {
	u, err := url.Parse(s.cfg.BaseURL)
	if err != nil || u.Host == "" {
		return nil, "", errNoPasskeys
	}
	origin := u.Scheme + "://" + u.Host
	w, err := webauthn.New(&webauthn.Config{
		RPID: u.Hostname(), RPDisplayName: "healthgw", RPOrigins: []string{origin},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
	})
	if err != nil {
		return nil, "", errNoPasskeys
	}
	return w, origin, nil
}

// passkeyUser is the signed-in patient as a WebAuthn user. The user
// handle is derived from the pseudonym (not the patient ID) and is
// opaque.
type passkeyUser struct {
	id, name string
	creds    []webauthn.Credential
}

func (u passkeyUser) WebAuthnID() []byte {
	h := sha256.Sum256([]byte("healthgw/webauthn-user\n" + u.id))
	return h[:]
}
func (u passkeyUser) WebAuthnName() string                       { return u.name }
func (u passkeyUser) WebAuthnDisplayName() string                { return u.name }
func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Server) user(ctx context.Context, rq *request) (passkeyUser, []consent.Passkey, error) {
	ps := s.pseudonym(rq)
	ks, err := s.d.Signing.Passkeys(ctx, ps)
	if err != nil {
		return passkeyUser{}, nil, err
	}
	u := passkeyUser{id: ps, name: rq.sess.Subject}
	for _, k := range ks {
		id, _ := base64.RawURLEncoding.DecodeString(k.CredentialID)
		u.creds = append(u.creds, webauthn.Credential{ID: id})
	}
	return u, ks, nil
}

func (s *Server) passkeyPage(w http.ResponseWriter, rq *request) error {
	if s.d.Signing == nil {
		return errNoPasskeys
	}
	if err := s.catchUp(rq); err != nil {
		return err
	}
	_, ks, err := s.user(rq.Context(), rq)
	if err != nil {
		return err
	}
	s.render(w, rq, http.StatusOK, "passkey.html", "PasskeyTitle", map[string]any{
		"Passkeys": ks, "Registered": rq.URL.Query().Has("registered"),
	})
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// passkeyBegin starts the registration ceremony: the creation options as
// JSON.
func (s *Server) passkeyBegin(w http.ResponseWriter, rq *request) error {
	if s.d.Signing == nil {
		return errNoPasskeys
	}
	wa, _, err := s.webAuthn()
	if err != nil {
		return err
	}
	u, _, err := s.user(rq.Context(), rq)
	if err != nil {
		return err
	}
	opts, sd, err := wa.BeginRegistration(u, webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()))
	if err != nil {
		return err
	}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) { ss.Passkey.Registration = sd })
	writeJSON(w, http.StatusOK, opts)
	return nil
}

// passkeyFinish ends the registration ceremony (field "credential": the
// browser's PublicKeyCredential as JSON) and logs the passkey.
func (s *Server) passkeyFinish(w http.ResponseWriter, rq *request) error {
	if s.d.Signing == nil {
		return errNoPasskeys
	}
	wa, origin, err := s.webAuthn()
	if err != nil {
		return err
	}
	sd := rq.sess.Passkey.Registration
	if sd == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": rq.T("PasskeyErrNoCeremony")})
		return nil
	}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) { ss.Passkey.Registration = nil })
	u, _, err := s.user(rq.Context(), rq)
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(rq.PostForm.Get("credential")))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": rq.T("PasskeyErrRegister")})
		return nil
	}
	cred, err := wa.CreateCredential(u, *sd, parsed)
	if err != nil {
		s.log.LogAttrs(rq.Context(), slog.LevelWarn, "passkey registration refused", slog.String("err", err.Error()))
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": rq.T("PasskeyErrRegister")})
		return nil
	}
	wu, _ := url.Parse(origin)
	p := consent.Passkey{
		CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
		PublicKey:    base64.RawURLEncoding.EncodeToString(cred.PublicKey),
		RPID:         wu.Hostname(), Origin: origin,
	}
	has, err := s.hasPasskey(rq.Context(), rq)
	if err != nil {
		return err
	}
	if has {
		// A further passkey is signed by one the patient has.
		pc, err := s.d.Signing.PreparePasskey(rq.Context(), s.pseudonym(rq), p)
		if err != nil {
			return err
		}
		s.keepPending(rq, pc)
		writeJSON(w, http.StatusOK, map[string]string{"next": "/app/passkey/confirm"})
		return nil
	}
	if _, err := s.d.Signing.RegisterPasskey(rq.Context(), s.pseudonym(rq), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": "/app/passkey?registered=1"})
	return nil
}

// passkeyConfirm asks an existing passkey to sign the registration of a
// further one.
func (s *Server) passkeyConfirm(w http.ResponseWriter, rq *request) error {
	p := rq.sess.Passkey.Pending
	if s.d.Signing == nil || p == nil || p.Change.Passkey == nil {
		return errSignatureFail
	}
	return s.renderSign(w, rq, p, grantView{})
}

// keepPending keeps prepared change pc in the session until it is
// signed.
func (s *Server) keepPending(rq *request, pc *access.PreparedChange) *pendingChange {
	p := &pendingChange{ID: randomToken(), Change: pc, Started: s.cfg.Now()}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) { ss.Passkey.Pending = p })
	return p
}

// hasPasskey reports whether the signed-in patient has a passkey, so
// their consent changes must be signed.
func (s *Server) hasPasskey(ctx context.Context, rq *request) (bool, error) {
	if s.d.Signing == nil {
		return false, nil
	}
	ks, err := s.d.Signing.Passkeys(ctx, s.pseudonym(rq))
	return len(ks) > 0, err
}

// askSignature keeps prepared change pc and renders the page that asks
// the passkey for its assertion over the entry's commitment.
func (s *Server) askSignature(w http.ResponseWriter, rq *request, pc *access.PreparedChange, g grantView) error {
	return s.renderSign(w, rq, s.keepPending(rq, pc), g)
}

// renderSign renders the page that asks the patient's passkey for its
// assertion over pending change p's commitment.
func (s *Server) renderSign(w http.ResponseWriter, rq *request, p *pendingChange, g grantView) error {
	ks, err := s.d.Signing.Passkeys(rq.Context(), s.pseudonym(rq))
	if err != nil {
		return err
	}
	wa, _, err := s.webAuthn()
	if err != nil {
		return err
	}
	var allow []string
	for _, k := range ks {
		allow = append(allow, k.CredentialID)
	}
	s.render(w, rq, http.StatusOK, "sign.html", "SignTitle", map[string]any{
		"Grant": g, "Revoke": p.Change.Revoke, "Passkey": p.Change.Passkey != nil, "Pending": p.ID,
		"Challenge": consent.Challenge(p.Change.Challenge()), "RPID": wa.Config.RPID, "Allow": strings.Join(allow, " "),
	})
	return nil
}

// assertionJSON is the browser's assertion (PublicKeyCredential.toJSON
// of navigator.credentials.get).
type assertionJSON struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Response struct {
		AuthenticatorData string `json:"authenticatorData"`
		ClientDataJSON    string `json:"clientDataJSON"`
		Signature         string `json:"signature"`
	} `json:"response"`
}

// signSubmit appends the pending change with the passkey's assertion
// (field "assertion").
func (s *Server) signSubmit(w http.ResponseWriter, rq *request) error {
	if s.d.Signing == nil {
		return errNoPasskeys
	}
	p := rq.sess.Passkey.Pending
	if p == nil || rq.PostForm.Get("pending") != p.ID || s.cfg.Now().Sub(p.Started) > pendingTimeout {
		return errSignatureFail
	}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) { ss.Passkey.Pending = nil })
	var a assertionJSON
	if err := json.Unmarshal([]byte(rq.PostForm.Get("assertion")), &a); err != nil {
		return errSignatureFail
	}
	att := ledger.Attestation{Kind: ledger.AttestationWebAuthn, CredentialID: a.ID,
		AuthenticatorData: a.Response.AuthenticatorData, ClientDataJSON: a.Response.ClientDataJSON, Signature: a.Response.Signature}
	g, _, err := s.d.Signing.CommitSigned(rq.Context(), p.Change, att)
	if errors.Is(err, access.ErrSignatureRefused) {
		s.log.LogAttrs(rq.Context(), slog.LevelWarn, "passkey assertion refused", slog.String("err", err.Error()))
		return errSignatureFail
	}
	if err != nil {
		return err
	}
	if p.Change.Passkey != nil {
		http.Redirect(w, rq.Request, "/app/passkey?registered=1", http.StatusSeeOther)
		return nil
	}
	next := "?granted=1"
	if p.Change.Revoke {
		next = "?revoked=1"
	}
	http.Redirect(w, rq.Request, "/app/consents/"+url.PathEscape(g.ID)+next, http.StatusSeeOther)
	return nil
}
