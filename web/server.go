package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/registry"
)

// Consents is the consent projection as the pages read it
// (consentstore.Store).
type Consents interface {
	Grant(ctx context.Context, id string) (consent.Grant, error)
	ListByPatient(ctx context.Context, patient string, p consent.Page) ([]consent.Grant, string, error)
	AccessLog(ctx context.Context, patient string, p consent.Page) ([]consent.AccessEvent, string, error)
	AuditEvents(ctx context.Context, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error)
}

// Changes are a patient's consent changes with receipts (access.Service).
type Changes interface {
	Grant(ctx context.Context, patient string, g consent.Grant) (consent.Grant, access.Receipt, error)
	Revoke(ctx context.Context, patient, id string) (consent.Grant, access.Receipt, error)
}

var _ Changes = (*access.Service)(nil)

// Orgs is the organisation registry (registrystore.Store).
type Orgs interface {
	List(ctx context.Context) ([]registry.Registration, error)
	Org(ctx context.Context, id string) (auth.Org, error)
}

// Ledger is the log as receipts and the ledger status read it.
type Ledger interface {
	ledger.Reader
	ledger.Prover
}

// Syncer catches the projections up with the log (ledger.Follower).
type Syncer interface {
	Sync(ctx context.Context, size uint64) error
}

// Pseudonymizer maps patient IDs to ledger pseudonyms.
type Pseudonymizer interface {
	Pseudonym(patient string) string
}

// Cosigned gives the latest checkpoint the gateway submitted to its
// witnesses, with the cosignatures they returned (witness.Submitter),
// or nil before the first submission.
type Cosigned interface {
	Cosigned() []byte
}

// CatchUpper catches the projections up with the log waiting for a
// bounded backlog only (access.Queries.CatchUp): it returns the log size
// they now cover, or access.ErrCatchingUp when they are further behind
// than a query waits for.
type CatchUpper interface {
	CatchUp(ctx context.Context) (uint64, error)
}

// Deps are the services behind the pages. All are required but
// Eligibility (without it the eligibility-proof pages say they are not
// available), Cosigned (without it, or without Config.Witnesses, the
// ledger status shows no witnesses) and CatchUp.
type Deps struct {
	Consents    Consents
	Changes     Changes
	Orgs        Orgs
	Ledger      Ledger
	Sync        Syncer
	Pseud       Pseudonymizer
	Eligibility Eligibility
	Cosigned    Cosigned
	// Signing, if set, lets patients register a passkey and sign their
	// consent changes with it.
	Signing Signing
	// CatchUp, if set, is how a page catches the projections up before
	// reading them, so that a page waits for a bounded backlog only (the
	// API's --audit-max-lag) and otherwise shows the catching-up message;
	// without it a page waits (Sync) for the whole backlog.
	CatchUp CatchUpper
}

// Config configures the web front doors.
type Config struct {
	// BaseURL is the gateway's public URL.
	BaseURL string
	// Patient and Console are the two relying parties.
	Patient, Console OIDCConfig
	// ConsoleOrg, when set, is the regulator organisation every staff
	// member of the console's IdP acts for. When empty, the ID token's
	// healthgw_org claim names it (the development IdP sets it). Either
	// way the organisation must be a registered regulator holding
	// audit.read.
	ConsoleOrg string
	// CheckpointKey is the ledger's checkpoint verifier key (a note
	// verifier key), against which pages check receipts.
	CheckpointKey string
	// Witnesses are the cosignature verifier keys (C2SP
	// tlog-cosignature/v1) of the witnesses the gateway submits its
	// checkpoints to, and WitnessThreshold how many of them must cosign a
	// checkpoint (0: all). The ledger status shows who cosigned and
	// whether the threshold is met, and checks it in the browser.
	Witnesses        []string
	WitnessThreshold int
	// SessionIdle and SessionMax: see DefaultSessionIdle, DefaultSessionMax.
	SessionIdle, SessionMax time.Duration
	// HTTPClient reaches the identity providers (default: 10 s timeout).
	HTTPClient *http.Client
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Server serves /app/, /console/ and /static/.
type Server struct {
	cfg      Config
	d        Deps
	log      *slog.Logger
	bundle   *i18n.Bundle
	pages    map[string]*template.Template
	sessions *sessionStore
	patient  *relyingParty
	console  *relyingParty
	mux      *http.ServeMux
	// witnesses are Config.Witnesses parsed.
	witnesses []note.Verifier
}

// New builds the web server; templates and catalogues are parsed once,
// here.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Consents == nil || d.Changes == nil || d.Orgs == nil || d.Ledger == nil || d.Sync == nil || d.Pseud == nil {
		return nil, errors.New("web: a dependency is missing")
	}
	// An area without an issuer has sign-in switched off (its pages say
	// so); a half-configured one is an error.
	if cfg.Patient.Issuer != "" || cfg.Patient.ClientID != "" {
		if err := cfg.Patient.validate("patient"); err != nil {
			return nil, err
		}
	}
	if cfg.Console.Issuer != "" || cfg.Console.ClientID != "" {
		if err := cfg.Console.validate("console"); err != nil {
			return nil, err
		}
	}
	if cfg.CheckpointKey == "" {
		return nil, errors.New("web: the checkpoint verifier key is required")
	}
	var witnesses []note.Verifier
	for _, k := range cfg.Witnesses {
		v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("web: witness key %q: %w", k, err)
		}
		witnesses = append(witnesses, v)
	}
	if cfg.WitnessThreshold < 0 || cfg.WitnessThreshold > len(witnesses) {
		return nil, fmt.Errorf("web: witness threshold %d, with %d witnesses", cfg.WitnessThreshold, len(witnesses))
	}
	if cfg.WitnessThreshold == 0 {
		cfg.WitnessThreshold = len(witnesses)
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = DefaultSessionMax
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := newBundle()
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, d: d, log: cfg.Logger, bundle: b, pages: pages,
		sessions:  newSessionStore(cfg.SessionIdle, cfg.SessionMax, cfg.Now),
		patient:   &relyingParty{cfg: cfg.Patient, client: cfg.HTTPClient},
		console:   &relyingParty{cfg: cfg.Console, client: cfg.HTTPClient},
		mux:       http.NewServeMux(),
		witnesses: witnesses,
	}
	s.routes()
	return s, nil
}

// Handler returns the handler for /app/, /console/ and /static/.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// csp is the Content-Security-Policy of every page: scripts and styles
// only from files of this origin, nothing inline, no framing, forms only
// to this origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if strings.HasPrefix(s.cfg.BaseURL, "https://") {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// request is one page request: the session (zero if none), the area and
// the translator.
type request struct {
	*http.Request
	area area
	sess session
	has  bool // a live session was found
	text
	// asOf is the ledger size the page's data is complete for, once the
	// handler caught the projections up (catchUp); 0 before.
	asOf uint64
}

// handler is a page handler: it gathers data and renders, or returns an
// error for fail.
type handler func(w http.ResponseWriter, rq *request) error

// page wraps a handler: language, session, and for signed-in areas the
// sign-in check; state-changing methods must carry the session's CSRF
// token.
func (s *Server) page(a area, needSignIn bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang, set := pickLanguage(r)
		if set {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
				Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		rq := &request{Request: r, area: a, text: text{loc: i18n.NewLocalizer(s.bundle, lang), lang: lang}}
		if c, err := r.Cookie(a.cookie); err == nil {
			rq.sess, rq.has = s.sessions.get(a, c.Value)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Vary", "Cookie, Accept-Language")
		var err error
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = s.checkCSRF(rq)
		}
		switch {
		case err != nil:
		case needSignIn && !(rq.has && rq.sess.signedIn()):
			err = errSignedOut
		default:
			err = h(w, rq)
		}
		if err != nil {
			s.fail(w, rq, err)
		}
	})
}

// maxForm bounds a form body, uploads included.
const maxForm = 64 << 10

// checkCSRF reads the form of a state-changing request (URL-encoded, or
// multipart with its uploads held in memory) and checks its synchronizer
// token: the field "csrf" must equal the session's token. No session, no
// token, or another token is errCSRF; a body beyond maxForm is
// errTooLarge.
func (s *Server) checkCSRF(rq *request) error {
	if !rq.has {
		return errCSRF
	}
	rq.Body = http.MaxBytesReader(nil, rq.Body, maxForm)
	var err error
	if mt, _, _ := mime.ParseMediaType(rq.Header.Get("Content-Type")); mt == "multipart/form-data" {
		err = rq.ParseMultipartForm(maxForm)
	} else {
		err = rq.ParseForm()
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errTooLarge
	case err != nil:
		return errCSRF
	}
	got := rq.PostForm.Get("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(rq.sess.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// Page errors.
var (
	errCSRF         = errors.New("web: missing or wrong CSRF token")
	errSignedOut    = errors.New("web: not signed in")
	errNotFound     = errors.New("web: not found")
	errNoConsole    = errors.New("web: not a regulator with audit.read")
	errSignInFailed = errors.New("web: sign-in failed")
	errBadRequest   = errors.New("web: bad request")
	errNoSignIn     = errors.New("web: sign-in is not configured")
	errTooLarge     = errors.New("web: form too large")
	errNoProofs     = errors.New("web: eligibility proofs are not configured")
)

// publicMessage is implemented by domain errors whose message is safe to
// show (consent.ValidationError, consent.FilterError).
type publicMessage interface{ PublicMessage() string }

// errorRule maps an error kind to a status and a catalogue message.
type errorRule struct {
	target error
	status int
	msg    string
}

// errorPages is the one table from error kinds to pages; the first match
// wins; anything else is a 500 with no detail.
var errorPages = []errorRule{
	{errNotFound, http.StatusNotFound, "ErrNotFound"},
	{consent.ErrNotFound, http.StatusNotFound, "ErrNotFound"},
	{access.ErrNotFound, http.StatusNotFound, "ErrNotFound"},
	{ledger.ErrNotFound, http.StatusNotFound, "ErrNotFound"},
	{errCSRF, http.StatusForbidden, "ErrCSRF"},
	{errNoConsole, http.StatusForbidden, "ErrNoConsole"},
	{errSignInFailed, http.StatusBadRequest, "ErrSignIn"},
	{errBadRequest, http.StatusBadRequest, "ErrBadRequest"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "ErrTooLarge"},
	{errNoProofs, http.StatusServiceUnavailable, "ErrNoProofs"},
	{errNoPasskeys, http.StatusServiceUnavailable, "ErrNoPasskeys"},
	{errSignatureFail, http.StatusBadRequest, "ErrSignature"},
	{access.ErrSignatureRequired, http.StatusConflict, "ErrSignatureRequired"},
	{eligibility.ErrNotReady, http.StatusServiceUnavailable, "ErrProofsNotReady"},
	{consent.ErrInvalidGrant, http.StatusBadRequest, "ErrInvalidGrant"},
	{consent.ErrInvalidFilter, http.StatusBadRequest, "ErrBadRequest"},
	{consent.ErrInvalidCursor, http.StatusBadRequest, "ErrBadRequest"},
	{consent.ErrAlreadyRevoked, http.StatusConflict, "ErrAlreadyRevoked"},
	{errIdPUnavailable, http.StatusBadGateway, "ErrIdP"},
	{errNoSignIn, http.StatusServiceUnavailable, "ErrNoSignIn"},
	{ledger.ErrUnavailable, http.StatusServiceUnavailable, "ErrUnavailable"},
	{access.ErrCatchingUp, http.StatusServiceUnavailable, "ErrCatchingUp"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "ErrUnavailable"},
}

// fail renders err as an error page (or, signed out, sends the browser to
// sign in).
func (s *Server) fail(w http.ResponseWriter, rq *request, err error) {
	if errors.Is(err, errSignedOut) {
		if rq.Method == http.MethodGet {
			http.Redirect(w, rq.Request, rq.area.path+"login", http.StatusSeeOther)
			return
		}
		s.render(w, rq, http.StatusUnauthorized, "error.html", "ErrSignedOut", errorData{Message: rq.T("ErrSignedOut")})
		return
	}
	status, msg := http.StatusInternalServerError, "ErrInternal"
	for _, rule := range errorPages {
		if errors.Is(err, rule.target) {
			status, msg = rule.status, rule.msg
			break
		}
	}
	if status == http.StatusServiceUnavailable {
		// As the API: every 503 says when to try again.
		w.Header().Set("Retry-After", "2")
	}
	data := errorData{Message: rq.T(msg)}
	var pm publicMessage
	if status == http.StatusBadRequest && errors.As(err, &pm) {
		data.Detail = pm.PublicMessage()
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(rq.Context(), level, "web page error", slog.String("path", rq.URL.Path),
		slog.Int("status", status), slog.String("err", err.Error()))
	s.render(w, rq, status, "error.html", "ErrorTitle", data)
}

type errorData struct {
	Message, Detail string
}

// view is what every template gets: the translator, the session's area
// and CSRF token, and the page's own data.
type view struct {
	text
	Area     string
	Title    string
	CSRF     string
	SignedIn bool
	Who      string
	Path     string
	Data     any
	// AsOf is the ledger size the page is complete for (the API's
	// as_of), or 0 on pages that read no projection.
	AsOf uint64
}

func (s *Server) render(w http.ResponseWriter, rq *request, status int, name, title string, data any) {
	t, ok := s.pages[name]
	if !ok {
		panic("web: no template " + name)
	}
	v := view{text: rq.text, Area: rq.area.name, Title: rq.T(title), Data: data, Path: rq.URL.Path, AsOf: rq.asOf}
	if rq.has && rq.sess.signedIn() {
		v.SignedIn, v.CSRF, v.Who = true, rq.sess.CSRF, rq.sess.Subject
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.LogAttrs(rq.Context(), slog.LevelError, "web template", slog.String("page", name), slog.String("err", err.Error()))
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, buf.String())
}

// catchUp brings the projections up to the log's size, so a page shows
// every decision acknowledged before it, and notes that size on rq (the
// page's "as of").
func (s *Server) catchUp(rq *request) error {
	ctx := rq.Context()
	if s.d.CatchUp != nil {
		n, err := s.d.CatchUp.CatchUp(ctx)
		if err != nil {
			return err
		}
		rq.asOf = n
		return nil
	}
	n, err := s.d.Ledger.Size(ctx)
	if err != nil {
		return err
	}
	if err := s.d.Sync.Sync(ctx, n); err != nil {
		return err
	}
	rq.asOf = n
	return nil
}
