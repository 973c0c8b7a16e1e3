package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Session lifetimes.
const (
	// DefaultSessionIdle signs a session out after this long without a
	// request.
	DefaultSessionIdle = 30 * time.Minute
	// DefaultSessionMax bounds a session's life, however active.
	DefaultSessionMax = 8 * time.Hour
	// loginTimeout bounds a sign-in in progress (state, nonce, verifier).
	loginTimeout = 10 * time.Minute
	// maxSessions bounds the store; new sign-ins beyond it evict the
	// oldest sessions (a flood of anonymous sign-in starts cannot exhaust
	// memory).
	maxSessions = 100_000
)

// Cookie names. The patient app's and the console's sessions are
// separate cookies scoped to their paths, so a patient session is never
// sent to the console and the other way round.
const (
	appCookie     = "healthgw_app"
	consoleCookie = "healthgw_console"
)

// area is one of the two front doors.
type area struct {
	name   string // "app" or "console"
	path   string // "/app/" or "/console/"
	cookie string
}

var (
	areaApp     = area{name: "app", path: "/app/", cookie: appCookie}
	areaConsole = area{name: "console", path: "/console/", cookie: consoleCookie}
)

// login is a sign-in in progress.
type login struct {
	State, Nonce, Verifier string
	Started                time.Time
}

// session is one signed-in (or signing-in) browser. Only its ID leaves
// the server, in the cookie.
type session struct {
	ID   string
	Area string
	// CSRF is the synchronizer token every state-changing form carries.
	CSRF string
	// Subject is the patient ID (app) or the staff member (console);
	// empty while signing in.
	Subject string
	// Org is a staff member's regulator organisation.
	Org      string
	Login    *login
	Created  time.Time
	LastSeen time.Time
	// Proofs is a patient's eligibility-proof workspace (proofs.go).
	Proofs proofState
	// Passkey is the patient's WebAuthn ceremonies (passkey.go).
	Passkey passkeyState
}

func (s *session) signedIn() bool { return s.Subject != "" }

// sessionStore keeps sessions in memory (see the package comment for why).
type sessionStore struct {
	idle, max time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessionStore(idle, max time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{idle: idle, max: max, now: now, m: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// create stores a new session for area a.
func (st *sessionStore) create(a area) *session {
	now := st.now()
	s := &session{ID: randomToken(), Area: a.name, CSRF: randomToken(), Created: now, LastSeen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked(now)
	if len(st.m) >= maxSessions {
		var oldest *session
		for _, v := range st.m {
			if oldest == nil || v.LastSeen.Before(oldest.LastSeen) {
				oldest = v
			}
		}
		delete(st.m, oldest.ID)
	}
	st.m[s.ID] = s
	return s
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	if s.Login != nil && !s.signedIn() {
		return now.Sub(s.Login.Started) > loginTimeout
	}
	return now.Sub(s.LastSeen) > st.idle || now.Sub(s.Created) > st.max
}

func (st *sessionStore) expireLocked(now time.Time) {
	for id, s := range st.m {
		if st.expired(s, now) {
			delete(st.m, id)
		}
	}
}

// get returns a copy of the live session id of area a, refreshing its
// idle timer; ok is false for an unknown, expired or other-area ID.
func (st *sessionStore) get(a area, id string) (session, bool) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok || s.Area != a.name {
		return session{}, false
	}
	if st.expired(s, now) {
		delete(st.m, id)
		return session{}, false
	}
	s.LastSeen = now
	return *s, true
}

// signIn replaces a signing-in session with a fresh signed-in one (a new
// ID and CSRF token: no session fixation).
func (st *sessionStore) signIn(a area, old, subject, org string) *session {
	st.mu.Lock()
	delete(st.m, old)
	st.mu.Unlock()
	s := st.create(a)
	st.mu.Lock()
	s.Subject, s.Org = subject, org
	st.mu.Unlock()
	return s
}

// update changes the live session id of area a with f, under the lock;
// it reports whether there was one. f must replace, not modify, what a
// copy handed out by get shares (slices, pointers).
func (st *sessionStore) update(a area, id string, f func(*session)) bool {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok || s.Area != a.name || st.expired(s, now) {
		return false
	}
	f(s)
	return true
}

// setLogin records a sign-in in progress.
func (st *sessionStore) setLogin(id string, l *login) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.m[id]; ok {
		s.Login = l
	}
}

// delete ends a session.
func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

// cookie is the session cookie of area a: Secure, HttpOnly, SameSite=Lax
// (the IdP's redirect back is a top-level GET from another site, which
// Lax allows and Strict would not), scoped to the area's path, with no
// Max-Age (a browser session cookie; the server enforces expiry).
func (a area) sessionCookie(id string) *http.Cookie {
	return &http.Cookie{Name: a.cookie, Value: id, Path: a.path, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (a area) clearCookie() *http.Cookie {
	c := a.sessionCookie("")
	c.MaxAge = -1
	return c
}
