package web

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// parsePages parses every page once: the shared layout, the partials
// (_*.html) and the page's own file.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
}

func (s *Server) routes() {
	m := s.mux
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))

	// Patient app.
	a := areaApp
	m.Handle("GET /app/{$}", s.page(a, false, s.appHome))
	m.Handle("GET /app/login", s.page(a, false, s.signInStart))
	m.Handle("GET /app/callback", s.page(a, false, s.signInFinish))
	m.Handle("POST /app/logout", s.page(a, true, s.signOut))
	m.Handle("GET /app/consents", s.page(a, true, s.myConsents))
	m.Handle("GET /app/consents/new", s.page(a, true, s.grantForm))
	m.Handle("POST /app/consents", s.page(a, true, s.grantSubmit))
	m.Handle("GET /app/consents/{id}", s.page(a, true, s.consentPage))
	m.Handle("GET /app/consents/{id}/revoke", s.page(a, true, s.revokeConfirm))
	m.Handle("POST /app/consents/{id}/revoke", s.page(a, true, s.revokeSubmit))
	m.Handle("GET /app/access", s.page(a, true, s.accessPage))
	m.Handle("GET /app/passkey", s.page(a, true, s.passkeyPage))
	m.Handle("POST /app/passkey/begin", s.page(a, true, s.passkeyBegin))
	m.Handle("POST /app/passkey/finish", s.page(a, true, s.passkeyFinish))
	m.Handle("GET /app/passkey/confirm", s.page(a, true, s.passkeyConfirm))
	m.Handle("POST /app/sign", s.page(a, true, s.signSubmit))
	m.Handle("GET /app/proofs", s.page(a, true, s.proofsPage))
	m.Handle("POST /app/proofs/credentials", s.page(a, true, s.addCredential))
	m.Handle("POST /app/proofs/credentials/{id}/remove", s.page(a, true, s.removeCredential))
	m.Handle("POST /app/proofs/request", s.page(a, true, s.setRequest))
	m.Handle("GET /app/proofs/request", s.page(a, true, s.requestPage))
	m.Handle("POST /app/proofs/request/forget", s.page(a, true, s.forgetRequest))
	m.Handle("POST /app/proofs/request/answer", s.page(a, true, s.answerRequest))
	m.Handle("GET /app/proofs/request/challenge.json", s.page(a, true, s.challengeFile))
	m.Handle("GET /app/proofs/keys/{statement}", s.page(a, true, s.provingKey))
	m.Handle("/app/", s.page(a, false, func(http.ResponseWriter, *request) error { return errNotFound }))
	m.Handle("GET /app", http.RedirectHandler("/app/", http.StatusMovedPermanently))

	// Regulator console.
	c := areaConsole
	m.Handle("GET /console/{$}", s.page(c, false, s.consoleHome))
	m.Handle("GET /console/login", s.page(c, false, s.signInStart))
	m.Handle("GET /console/callback", s.page(c, false, s.signInFinish))
	m.Handle("POST /console/logout", s.page(c, true, s.signOut))
	m.Handle("GET /console/audit", s.page(c, true, s.auditPage))
	m.Handle("GET /console/audit.csv", s.page(c, true, s.auditCSV))
	m.Handle("GET /console/audit.fhir.json", s.page(c, true, s.auditFHIR))
	m.Handle("GET /console/break-glass", s.page(c, true, s.breakGlassPage))
	m.Handle("GET /console/hospitals", s.page(c, true, s.hospitalsPage))
	m.Handle("GET /console/ledger", s.page(c, true, s.ledgerPage))
	m.Handle("/console/", s.page(c, false, func(http.ResponseWriter, *request) error { return errNotFound }))
	m.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
}
