package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

// Eligibility proofs, the patient's side. Proving is not done in the
// browser: the patient runs `healthgw zk prove` on their own computer,
// where their holder secret is, with files this page hands out (the
// verifier's challenge as checked here, the gateway's keys and the
// statement's proving key) and the exact command; the page then takes the
// proof and has the gateway verify it for the verifier, which reads the
// outcome with GET /v1/proofs/challenges/{id}.
//
// The gateway keeps no credentials per patient (a credential is bound to
// the holder's secret, not to a patient ID): the patient shows the page
// their credential files, which are kept with the session in server
// memory only, never stored, and gone at sign-out. So a patient page can
// only ever show what that patient's own browser handed it.

// Eligibility is the zero-knowledge eligibility use case as the patient
// app calls it (eligibility.Service).
type Eligibility interface {
	InspectCredential(ctx context.Context, file []byte, now time.Time) (eligibility.HeldCredential, error)
	CheckChallenge(ctx context.Context, file []byte, now time.Time) (circuits.Challenge, error)
	Answer(ctx context.Context, ch circuits.Challenge, proof []byte, now time.Time) (eligibility.Result, error)
	ProvingKeyPath(ctx context.Context, statement string) (string, error)
}

var _ Eligibility = (*eligibility.Service)(nil)

// proofState is a patient's eligibility-proof workspace, kept with the
// session. Its slices and pointers are replaced, never modified in place
// (sessionStore.update).
type proofState struct {
	Credentials []heldFile
	// Request is the verifier's challenge being answered (as re-encoded
	// after its check), Answer the outcome of answering it.
	Request []byte
	Answer  *answered
}

// heldFile is a credential file the patient showed the page.
type heldFile struct {
	ID   string // of its content
	Name string // the uploaded file's name, for the command
	Data []byte
}

type answered struct {
	Challenge string
	Result    eligibility.Result
}

const (
	// maxHeld bounds the credentials a session keeps (the oldest go).
	maxHeld = 10
	// maxFile bounds one credential, challenge or proof file.
	maxFile = 16 << 10
	// defaultCredentialFile and secretFile are the file names the
	// command names when the page does not know better.
	defaultCredentialFile = "credential.json"
	secretFile            = "secret.json"
	jwksFile              = "healthgw-jwks.json"
	proofFile             = "proof.json"
)

// holderErrors maps what the eligibility use case refuses to the message
// shown next to the form.
var holderErrors = []struct {
	target error
	msg    string
}{
	{eligibility.ErrNotCredential, "ErrCredentialFile"},
	{eligibility.ErrNotChallenge, "ErrChallengeFile"},
	{circuits.ErrChallengeSignature, "ErrChallengeSignature"},
	{circuits.ErrChallengeScope, "ErrChallengeScope"},
	{eligibility.ErrChallengeExpired, "ErrChallengeExpired"},
	{eligibility.ErrNotFound, "ErrChallengeExpired"},
	{eligibility.ErrChallengeUsed, "ErrChallengeUsed"},
	{eligibility.ErrNotProof, "ErrProofFile"},
	{eligibility.ErrOtherChallenge, "ErrProofOther"},
	{errNothing, "ErrNothingGiven"},
	{errFileTooLarge, "ErrFileTooLarge"},
}

var (
	errNothing      = errors.New("web: no file given")
	errFileTooLarge = errors.New("web: file too large")
)

// holderMessage is the form message of err, or "" for an error that is
// not the patient's (a page error).
func holderMessage(rq *request, err error) string {
	for _, r := range holderErrors {
		if errors.Is(err, r.target) {
			return rq.T(r.msg)
		}
	}
	return ""
}

func (s *Server) proofsOn() error {
	if s.d.Eligibility == nil {
		return errNoProofs
	}
	return nil
}

// upload reads a file from a form: the uploaded file field, else the
// pasted text field. It returns the file's base name ("" when pasted).
func upload(rq *request, fileField, textField string) (string, []byte, error) {
	if rq.MultipartForm != nil {
		if fhs := rq.MultipartForm.File[fileField]; len(fhs) > 0 && fhs[0].Size > 0 {
			if fhs[0].Size > maxFile {
				return "", nil, errFileTooLarge
			}
			f, err := fhs[0].Open()
			if err != nil {
				return "", nil, err
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
			if err != nil {
				return "", nil, err
			}
			if len(b) > maxFile {
				return "", nil, errFileTooLarge
			}
			return path.Base(strings.ReplaceAll(fhs[0].Filename, `\`, "/")), b, nil
		}
	}
	text := strings.TrimSpace(rq.PostForm.Get(textField))
	if text == "" {
		return "", nil, errNothing
	}
	if len(text) > maxFile {
		return "", nil, errFileTooLarge
	}
	return "", []byte(text), nil
}

func contentID(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// attrView is one attribute of a credential, in words.
type attrView struct {
	Name, Label, Value string
}

// credView is a held credential as the page shows it.
type credView struct {
	ID, Name   string
	Issuer     string // the issuing organisation's name, or its key ID
	IssuerOrg  string
	KeyID      string
	Registered bool
	Valid      bool
	Expiry     string
	Schema     string
	Attrs      []attrView
	Fits       bool   // answers the current request (request page)
	Why        string // why not (request page)
	held       eligibility.HeldCredential
}

// attrValue is an attribute value in the patient's language.
func (t text) attrValue(spec credential.AttributeSpec, v uint64) string {
	switch spec.Kind {
	case credential.KindDate:
		if v <= uint64(credential.MaxDay) {
			return t.Date(credential.Day(v).Time())
		}
	case credential.KindCode:
		system, code, _ := strings.Cut(spec.Format(v), ":")
		switch system {
		case credential.SystemGender:
			return t.T("Gender_" + code)
		case credential.SystemICD10:
			return t.T("CodeICD10", "Code", code)
		}
	}
	out := spec.Format(v)
	if spec.Unit != "" {
		out += " " + spec.Unit
	}
	return out
}

func (s *Server) credView(rq *request, f heldFile, h eligibility.HeldCredential, names orgNames) credView {
	c := h.Credential
	v := credView{ID: f.ID, Name: f.Name, KeyID: c.Issuer.ID(), Registered: h.Registered, Valid: h.Valid,
		Expiry: rq.Date(c.Expiry.Time()), Schema: c.Schema.Name, held: h}
	if h.Registered {
		v.IssuerOrg, v.Issuer = h.Issuer.Org, names.of(h.Issuer.Org)
	} else {
		v.Issuer = rq.T("IssuerUnregistered", "Key", c.Issuer.ID())
	}
	for i, a := range c.Schema.Attributes {
		if c.Attributes[i] == credential.Absent {
			continue
		}
		v.Attrs = append(v.Attrs, attrView{Name: a.Name, Label: rq.T("AttrLabel_" + a.Name), Value: rq.attrValue(a, c.Attributes[i])})
	}
	return v
}

// heldCredentials checks the session's credentials again (their issuers
// may have been registered since) and renders them.
func (s *Server) heldCredentials(ctx context.Context, rq *request) ([]credView, error) {
	names, _, err := s.orgNames(ctx)
	if err != nil {
		return nil, err
	}
	var out []credView
	for _, f := range rq.sess.Proofs.Credentials {
		h, err := s.d.Eligibility.InspectCredential(ctx, f.Data, s.cfg.Now())
		if err != nil {
			if holderMessage(rq, err) != "" {
				continue // cannot happen: it was checked when added
			}
			return nil, err
		}
		out = append(out, s.credView(rq, f, h, names))
	}
	return out, nil
}

// proofsForm is what the proofs page's forms were given and what they
// said about it.
type proofsForm struct {
	CredError, CredText string
	ReqError, ReqText   string
}

func (s *Server) proofsPage(w http.ResponseWriter, rq *request) error {
	return s.renderProofs(w, rq, http.StatusOK, proofsForm{})
}

func (s *Server) renderProofs(w http.ResponseWriter, rq *request, status int, f proofsForm) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	creds, err := s.heldCredentials(rq.Context(), rq)
	if err != nil {
		return err
	}
	q := rq.URL.Query()
	s.render(w, rq, status, "proofs.html", "ProofsTitle", map[string]any{
		"Credentials": creds, "Form": f, "HasRequest": len(rq.sess.Proofs.Request) > 0,
		"Added": q.Has("added"), "Removed": q.Has("removed"), "Max": maxHeld, "MaxKB": maxFile >> 10,
	})
	return nil
}

func (s *Server) addCredential(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	name, data, err := upload(rq, "credential_file", "credential")
	var h eligibility.HeldCredential
	if err == nil {
		h, err = s.d.Eligibility.InspectCredential(rq.Context(), data, s.cfg.Now())
	}
	if err != nil {
		msg := holderMessage(rq, err)
		if msg == "" {
			return err
		}
		return s.renderProofs(w, rq, http.StatusBadRequest, proofsForm{CredError: msg, CredText: rq.PostForm.Get("credential")})
	}
	canonical, err := credential.MarshalCredential(h.Credential)
	if err != nil {
		return err
	}
	if !safeFileName(name) {
		name = defaultCredentialFile
	}
	f := heldFile{ID: contentID(canonical), Name: name, Data: canonical}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) {
		creds := slices.DeleteFunc(slices.Clone(ss.Proofs.Credentials), func(h heldFile) bool { return h.ID == f.ID })
		creds = append(creds, f)
		if len(creds) > maxHeld {
			creds = creds[len(creds)-maxHeld:]
		}
		ss.Proofs.Credentials = creds
	})
	http.Redirect(w, rq.Request, "/app/proofs?added=1", http.StatusSeeOther)
	return nil
}

func (s *Server) removeCredential(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	id := rq.PathValue("id")
	found := false
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) {
		creds := slices.DeleteFunc(slices.Clone(ss.Proofs.Credentials), func(h heldFile) bool { return h.ID == id })
		found = len(creds) < len(ss.Proofs.Credentials)
		ss.Proofs.Credentials = creds
	})
	if !found {
		return errNotFound
	}
	http.Redirect(w, rq.Request, "/app/proofs?removed=1", http.StatusSeeOther)
	return nil
}

func (s *Server) setRequest(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	_, data, err := upload(rq, "challenge_file", "challenge")
	var ch circuits.Challenge
	if err == nil {
		ch, err = s.d.Eligibility.CheckChallenge(rq.Context(), data, s.cfg.Now())
	}
	if err != nil {
		msg := holderMessage(rq, err)
		if msg == "" {
			return err
		}
		return s.renderProofs(w, rq, http.StatusBadRequest, proofsForm{ReqError: msg, ReqText: rq.PostForm.Get("challenge")})
	}
	canonical, err := circuits.MarshalChallenge(ch)
	if err != nil {
		return err
	}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) {
		ss.Proofs.Request, ss.Proofs.Answer = canonical, nil
	})
	http.Redirect(w, rq.Request, "/app/proofs/request", http.StatusSeeOther)
	return nil
}

func (s *Server) forgetRequest(w http.ResponseWriter, rq *request) error {
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) {
		ss.Proofs.Request, ss.Proofs.Answer = nil, nil
	})
	http.Redirect(w, rq.Request, "/app/proofs", http.StatusSeeOther)
	return nil
}

// claim is what a challenge asks the holder to prove, in words ("you are
// at least 18 years old"), and the attribute it is about.
func (t text) claim(ch circuits.Challenge) (claim, attr string) {
	p := ch.Params
	sc := p.Schema
	if sc == nil {
		sc = credential.PatientV1
	}
	spec, _ := sc.Spec(p.Attribute)
	attr = t.T("Attr_" + p.Attribute)
	switch ch.Statement {
	case circuits.Age:
		if p.Attribute == "birth_date" {
			for years := 0; years <= 150; years++ {
				if c, err := credential.AgeCutoff(ch.Date, years); err == nil && c == p.Cutoff {
					return t.T("Claim_age_years", "N", years), attr
				}
			}
		}
		return t.T("Claim_date_before", "Attr", attr, "Date", t.Date(p.Cutoff.Time())), attr
	case circuits.Range:
		return t.T("Claim_range", "Attr", attr, "Lo", t.attrValue(spec, p.Lo), "Hi", t.attrValue(spec, p.Hi)), attr
	case circuits.Member:
		if p.Set == nil {
			return t.T("Claim_member_root", "Attr", attr), attr
		}
		var vs []string
		for _, v := range p.Set.Values() {
			vs = append(vs, t.attrValue(spec, v))
		}
		return t.T("Claim_member", "Attr", attr, "Set", t.list(vs, "ListOr")), attr
	}
	return string(ch.Statement), attr
}

// requestView is the challenge being answered, as the request page
// shows it.
type requestView struct {
	ID, Verifier, VerifierID string
	Ask, Claim               string
	Reveals                  []string
	Expires, Date            string
	Open                     bool   // can still be answered
	Closed                   string // why not
	NeedSet                  bool   // a member challenge without its set
	Credentials              []credView
	Fitting                  int
	ChallengeFile, KeyFile   string
	KeyURL, KeySize          string
	JWKSFile                 string
	Command                  string
	Answer                   *answerView
	AnswerError              string
}

type answerView struct {
	Valid   bool
	Message string
	Index   uint64
}

func challengeFileName(ch circuits.Challenge) string { return "healthgw-challenge-" + ch.ID + ".json" }

func provingKeyFileName(st circuits.Statement) string { return "healthgw-" + string(st) + ".pk" }

// safeName is what a file name in the command may hold without quoting.
var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$`)

func safeFileName(n string) bool { return safeName.MatchString(n) }

// proveCommand is the command the patient runs, every flag filled in.
func proveCommand(ch circuits.Challenge, credFile string) string {
	return strings.Join([]string{
		"healthgw zk prove",
		"  --challenge " + challengeFileName(ch),
		"  --verifier " + ch.Verifier,
		"  --gateway-key " + jwksFile,
		"  --proving-key " + provingKeyFileName(ch.Statement),
		"  --credential " + credFile,
		"  --secret " + secretFile,
		"  --out " + proofFile,
	}, " \\\n")
}

// currentRequest is the session's challenge, checked again: open, or why
// not (used up, expired).
func (s *Server) currentRequest(rq *request) (circuits.Challenge, string, error) {
	raw := rq.sess.Proofs.Request
	ch, err := s.d.Eligibility.CheckChallenge(rq.Context(), raw, s.cfg.Now())
	if err == nil {
		return ch, "", nil
	}
	msg := holderMessage(rq, err)
	if msg == "" {
		return circuits.Challenge{}, "", err
	}
	ch, perr := circuits.ParseChallenge(raw)
	if perr != nil {
		return circuits.Challenge{}, "", perr
	}
	return ch, msg, nil
}

func (s *Server) requestPage(w http.ResponseWriter, rq *request) error {
	return s.renderRequest(w, rq, http.StatusOK, "")
}

func (s *Server) renderRequest(w http.ResponseWriter, rq *request, status int, answerErr string) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	if len(rq.sess.Proofs.Request) == 0 {
		http.Redirect(w, rq.Request, "/app/proofs", http.StatusSeeOther)
		return nil
	}
	ctx := rq.Context()
	ch, closed, err := s.currentRequest(rq)
	if err != nil {
		return err
	}
	names, _, err := s.orgNames(ctx)
	if err != nil {
		return err
	}
	v := requestView{ID: ch.ID, VerifierID: ch.Verifier, Verifier: names.of(ch.Verifier), Date: rq.Date(ch.Date.Time()),
		Expires: rq.DateTime(ch.ExpiresAt), Open: closed == "", Closed: closed,
		NeedSet: ch.Statement == circuits.Member && ch.Params.Set == nil, AnswerError: answerErr,
		ChallengeFile: challengeFileName(ch), KeyFile: provingKeyFileName(ch.Statement), JWKSFile: jwksFile,
		KeyURL: "/app/proofs/keys/" + string(ch.Statement)}
	v.Claim, _ = rq.claim(ch)
	v.Ask = rq.T("ProofAsk", "Verifier", v.Verifier, "Claim", v.Claim)
	v.Reveals = []string{
		rq.T("Reveal1", "Claim", v.Claim),
		rq.T("Reveal2"),
		rq.T("Reveal3", "Verifier", v.Verifier),
		rq.T("Reveal4"),
	}
	if path, err := s.d.Eligibility.ProvingKeyPath(ctx, string(ch.Statement)); err == nil {
		if fi, err := os.Stat(path); err == nil {
			v.KeySize = rq.T("SizeMB", "N", fmt.Sprintf("%.1f", float64(fi.Size())/(1<<20)))
		}
	}
	creds, err := s.heldCredentials(ctx, rq)
	if err != nil {
		return err
	}
	credFile := defaultCredentialFile
	for i := range creds {
		c := &creds[i]
		err := ch.Answerable(c.held.Credential)
		switch {
		case err == nil && !c.Registered:
			c.Why = rq.T("FitUnregistered")
		case err == nil:
			c.Fits = true
			if v.Fitting == 0 {
				credFile = c.Name
			}
			v.Fitting++
		case errors.Is(err, credential.ErrExpired):
			c.Why = rq.T("FitExpired", "Date", v.Date)
		case errors.Is(err, circuits.ErrNotSatisfied):
			c.Why = rq.T("FitNo", "Claim", v.Claim)
		default:
			c.Why = rq.T("FitUnknown")
		}
	}
	v.Credentials = creds
	v.Command = proveCommand(ch, credFile)
	if a := rq.sess.Proofs.Answer; a != nil && a.Challenge == ch.ID {
		av := &answerView{Valid: a.Result.Valid, Index: a.Result.LedgerIndex}
		if av.Valid {
			av.Message = rq.T("AnswerValid", "Verifier", v.Verifier, "Claim", v.Claim)
		} else {
			av.Message = rq.T("AnswerRefused", "Verifier", v.Verifier, "Reason", rq.T("ProofReason_"+msgKey(string(a.Result.Reason))))
		}
		v.Answer = av
	}
	s.render(w, rq, status, "proof_request.html", "ProofRequestTitle", map[string]any{"R": v, "MaxKB": maxFile >> 10})
	return nil
}

// challengeFile hands out the session's challenge as the file the
// command names.
func (s *Server) challengeFile(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	raw := rq.sess.Proofs.Request
	if len(raw) == 0 {
		return errNotFound
	}
	ch, err := circuits.ParseChallenge(raw)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+challengeFileName(ch)+`"`)
	_, err = w.Write(raw)
	return err
}

// provingKey hands out a statement's proving key (public, but large:
// only to signed-in patients).
func (s *Server) provingKey(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	st, err := circuits.ParseStatement(rq.PathValue("statement"))
	if err != nil {
		return errNotFound
	}
	p, err := s.d.Eligibility.ProvingKeyPath(rq.Context(), string(st))
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return errNotFound
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+provingKeyFileName(st)+`"`)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, rq.Request, provingKeyFileName(st), fi.ModTime(), f)
	return nil
}

// answerRequest takes the patient's proof and has the gateway verify it
// for the verifier; the verifier reads the outcome from the API.
func (s *Server) answerRequest(w http.ResponseWriter, rq *request) error {
	if err := s.proofsOn(); err != nil {
		return err
	}
	if len(rq.sess.Proofs.Request) == 0 {
		http.Redirect(w, rq.Request, "/app/proofs", http.StatusSeeOther)
		return nil
	}
	ch, closed, err := s.currentRequest(rq)
	if err != nil {
		return err
	}
	if closed != "" {
		return s.renderRequest(w, rq, http.StatusConflict, closed)
	}
	_, proof, err := upload(rq, "proof_file", "proof")
	var res eligibility.Result
	if err == nil {
		res, err = s.d.Eligibility.Answer(rq.Context(), ch, proof, s.cfg.Now())
	}
	if err != nil {
		msg := holderMessage(rq, err)
		if msg == "" {
			return err
		}
		return s.renderRequest(w, rq, http.StatusBadRequest, msg)
	}
	s.sessions.update(areaApp, rq.sess.ID, func(ss *session) {
		ss.Proofs.Answer = &answered{Challenge: ch.ID, Result: res}
	})
	http.Redirect(w, rq.Request, "/app/proofs/request?answered=1", http.StatusSeeOther)
	return nil
}
