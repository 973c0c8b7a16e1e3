package web

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"golang.org/x/oauth2"

	"github.com/healthgw/healthgw/auth"
)

func (s *Server) rp(a area) *relyingParty {
	if a == areaConsole {
		return s.console
	}
	return s.patient
}

// signInStart creates a signing-in session holding state, nonce and the
// PKCE verifier, and sends the browser to the IdP.
func (s *Server) signInStart(w http.ResponseWriter, rq *request) error {
	if s.rp(rq.area).cfg.Issuer == "" {
		return errNoSignIn
	}
	l := &login{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Started: s.cfg.Now()}
	u, err := s.rp(rq.area).authCodeURL(rq.Context(), l)
	if err != nil {
		return err
	}
	sess := s.sessions.create(rq.area)
	s.sessions.setLogin(sess.ID, l)
	http.SetCookie(w, rq.area.sessionCookie(sess.ID))
	http.Redirect(w, rq.Request, u, http.StatusSeeOther)
	return nil
}

// signInFinish checks state, redeems the code, verifies the ID token and
// replaces the signing-in session by a signed-in one with a new ID.
func (s *Server) signInFinish(w http.ResponseWriter, rq *request) error {
	q := rq.URL.Query()
	if !rq.has || rq.sess.Login == nil || rq.sess.signedIn() {
		return errSignInFailed
	}
	l := rq.sess.Login
	if q.Get("state") == "" || q.Get("state") != l.State {
		return errSignInFailed
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		return errSignInFailed
	}
	id, err := s.rp(rq.area).exchange(rq.Context(), l, q.Get("code"))
	if err != nil {
		s.sessions.delete(rq.sess.ID)
		return err
	}
	org := ""
	if rq.area == areaConsole {
		if org, err = s.staffOrg(rq, id); err != nil {
			s.sessions.delete(rq.sess.ID)
			return err
		}
	} else if id.Role != "" && id.Role != "patient" {
		s.sessions.delete(rq.sess.ID)
		return errSignInFailed
	}
	sess := s.sessions.signIn(rq.area, rq.sess.ID, id.Subject, org)
	http.SetCookie(w, rq.area.sessionCookie(sess.ID))
	s.log.LogAttrs(rq.Context(), slog.LevelInfo, "web sign-in", slog.String("area", rq.area.name))
	next := "/app/consents"
	if rq.area == areaConsole {
		next = "/console/"
	}
	http.Redirect(w, rq.Request, next, http.StatusSeeOther)
	return nil
}

// staffOrg maps a staff identity to the regulator organisation it acts
// for, which must be registered as a regulator holding audit.read.
func (s *Server) staffOrg(rq *request, id identity) (string, error) {
	org := s.cfg.ConsoleOrg
	if org == "" {
		if id.Role != "staff" {
			return "", errNoConsole
		}
		org = id.Org
	}
	if org == "" {
		return "", errNoConsole
	}
	o, err := s.d.Orgs.Org(rq.Context(), org)
	if errors.Is(err, auth.ErrUnknownOrg) {
		return "", errNoConsole
	}
	if err != nil {
		return "", err
	}
	if o.Kind != auth.KindRegulator || !slices.Contains(o.Scopes, auth.ScopeAuditRead) {
		return "", errNoConsole
	}
	return org, nil
}

// signOut ends the session (a POST with the CSRF token).
func (s *Server) signOut(w http.ResponseWriter, rq *request) error {
	s.sessions.delete(rq.sess.ID)
	http.SetCookie(w, rq.area.clearCookie())
	http.Redirect(w, rq.Request, rq.area.path+"?signedout=1", http.StatusSeeOther)
	return nil
}

// requireStaff re-checks, on every console request, that the staff
// member's organisation still is a regulator with audit.read (a
// deregistration or scope change takes effect at once).
func (s *Server) requireStaff(rq *request) error {
	o, err := s.d.Orgs.Org(rq.Context(), rq.sess.Org)
	if err != nil || o.Kind != auth.KindRegulator || !slices.Contains(o.Scopes, auth.ScopeAuditRead) {
		return errNoConsole
	}
	return nil
}
