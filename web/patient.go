package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// maxListed bounds how many grants or events one page loads.
const maxListed = 5000

// pseudonym is the signed-in patient's ledger pseudonym: every query of a
// patient page is keyed by it, so no URL reaches another patient's data.
func (s *Server) pseudonym(rq *request) string { return s.d.Pseud.Pseudonym(rq.sess.Subject) }

func (s *Server) orgNames(ctx context.Context) (orgNames, []auth.Org, error) {
	regs, err := s.d.Orgs.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := orgNames{}
	var orgs []auth.Org
	for _, r := range regs {
		names[r.Org.ID] = r.Org.Name
		orgs = append(orgs, r.Org)
	}
	return names, orgs, nil
}

func (s *Server) appHome(w http.ResponseWriter, rq *request) error {
	if rq.has && rq.sess.signedIn() {
		http.Redirect(w, rq.Request, "/app/consents", http.StatusSeeOther)
		return nil
	}
	s.render(w, rq, http.StatusOK, "app_home.html", "AppTitle", map[string]any{"SignedOut": rq.URL.Query().Has("signedout")})
	return nil
}

// collect follows a paged query's cursors until the end or maxListed
// items.
func collect[T any](page func(consent.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	p := consent.Page{Limit: consent.MaxPageSize}
	for len(out) < maxListed {
		items, next, err := page(p)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	return out, nil
}

// allGrants loads the patient's grants, newest first.
func (s *Server) allGrants(ctx context.Context, pseud string) ([]consent.Grant, error) {
	return collect(func(p consent.Page) ([]consent.Grant, string, error) {
		return s.d.Consents.ListByPatient(ctx, pseud, p)
	})
}

func (s *Server) myConsents(w http.ResponseWriter, rq *request) error {
	ctx := rq.Context()
	if err := s.catchUp(rq); err != nil {
		return err
	}
	grants, err := s.allGrants(ctx, s.pseudonym(rq))
	if err != nil {
		return err
	}
	names, _, err := s.orgNames(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	groups := map[consent.Status][]grantView{}
	for _, g := range grants {
		v := rq.describe(g, names, now)
		groups[v.Status] = append(groups[v.Status], v)
	}
	type group struct {
		Title, Empty string
		Status       consent.Status
		Grants       []grantView
	}
	var gs []group
	for _, st := range []consent.Status{consent.StatusActive, consent.StatusPending, consent.StatusExpired, consent.StatusRevoked} {
		gs = append(gs, group{Title: rq.T("Group_" + string(st)), Empty: rq.T("GroupEmpty_" + string(st)), Status: st, Grants: groups[st]})
	}
	s.render(w, rq, http.StatusOK, "consents.html", "MyConsents", map[string]any{"Groups": gs, "Count": len(grants)})
	return nil
}

// grantInput is the wizard's form.
type grantInput struct {
	Query      string
	Org        string
	Categories []string
	Purposes   []string
	From       string
	Until      string
	Sensitive  bool
}

type option struct {
	Value, Label, Info string
	Sensitive, Checked bool
}

type grantFormData struct {
	In          grantInput
	Hospitals   []option
	Categories  []option
	Purposes    []option
	Errors      []string
	Searched    bool
	Today, Year string
}

const dateLayout = "2006-01-02"

func (s *Server) grantFormData(ctx context.Context, rq *request, in grantInput) (grantFormData, error) {
	_, orgs, err := s.orgNames(ctx)
	if err != nil {
		return grantFormData{}, err
	}
	now := s.cfg.Now().UTC()
	d := grantFormData{In: in, Searched: in.Query != "", Today: now.Format(dateLayout), Year: now.AddDate(1, 0, 0).Format(dateLayout)}
	if d.In.From == "" {
		d.In.From = d.Today
	}
	if d.In.Until == "" {
		d.In.Until = d.Year
	}
	q := strings.ToLower(strings.TrimSpace(in.Query))
	for _, o := range orgs {
		if o.Kind != auth.KindHospital {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(o.Name), q) && !strings.Contains(strings.ToLower(o.ID), q) && o.ID != in.Org {
			continue
		}
		label := o.Name
		if label == "" {
			label = o.ID
		}
		d.Hospitals = append(d.Hospitals, option{Value: o.ID, Label: label, Info: o.ID, Checked: o.ID == in.Org})
	}
	slices.SortFunc(d.Hospitals, func(a, b option) int { return strings.Compare(a.Label, b.Label) })
	for _, c := range records.Categories() {
		d.Categories = append(d.Categories, option{Value: string(c), Label: rq.categoryName(string(c)), Info: rq.categoryInfo(string(c)),
			Sensitive: c.Sensitive(), Checked: slices.Contains(in.Categories, string(c))})
	}
	for _, p := range consent.Purposes {
		if p == consent.PurposeEmergencyTreatment {
			continue // break-glass is policy, not consent
		}
		d.Purposes = append(d.Purposes, option{Value: string(p), Label: rq.purposeName(p), Info: rq.T("PurposeInfo_" + string(p)),
			Checked: slices.Contains(in.Purposes, string(p))})
	}
	return d, nil
}

func (s *Server) grantForm(w http.ResponseWriter, rq *request) error {
	q := rq.URL.Query()
	in := grantInput{Query: q.Get("q"), Org: q.Get("org"), Categories: q["category"], Purposes: q["purpose"], From: q.Get("from"), Until: q.Get("until")}
	if len(in.Purposes) == 0 {
		in.Purposes = []string{string(consent.PurposeTreatment)}
	}
	d, err := s.grantFormData(rq.Context(), rq, in)
	if err != nil {
		return err
	}
	s.render(w, rq, http.StatusOK, "grant.html", "GrantTitle", d)
	return nil
}

// parseDay reads a YYYY-MM-DD date (UTC midnight).
func parseDay(v string) (time.Time, bool) {
	t, err := time.Parse(dateLayout, strings.TrimSpace(v))
	return t, err == nil
}

func (s *Server) grantSubmit(w http.ResponseWriter, rq *request) error {
	f := rq.PostForm
	in := grantInput{Org: f.Get("org"), Categories: f["category"], Purposes: f["purpose"], From: f.Get("from"), Until: f.Get("until"), Sensitive: f.Get("sensitive_ok") == "yes"}
	ctx := rq.Context()
	var errs []string
	org, err := s.d.Orgs.Org(ctx, in.Org)
	if in.Org == "" || err != nil || org.Kind != auth.KindHospital {
		errs = append(errs, rq.T("FormErrHospital"))
	}
	sensitive := false
	for _, c := range in.Categories {
		if !records.ValidCategory(c) {
			errs = append(errs, rq.T("FormErrCategory"))
			break
		}
		sensitive = sensitive || records.Category(c).Sensitive()
	}
	if len(in.Categories) == 0 {
		errs = append(errs, rq.T("FormErrNoCategory"))
	}
	if sensitive && !in.Sensitive {
		errs = append(errs, rq.T("FormErrSensitive"))
	}
	var purposes []consent.Purpose
	for _, p := range in.Purposes {
		if !consent.Purpose(p).Valid() || consent.Purpose(p) == consent.PurposeEmergencyTreatment {
			errs = append(errs, rq.T("FormErrPurpose"))
			break
		}
		purposes = append(purposes, consent.Purpose(p))
	}
	if len(in.Purposes) == 0 {
		errs = append(errs, rq.T("FormErrNoPurpose"))
	}
	now := s.cfg.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	from, okF := parseDay(in.From)
	until, okU := parseDay(in.Until)
	switch {
	case !okF || !okU:
		errs = append(errs, rq.T("FormErrDate"))
	case from.Before(today):
		errs = append(errs, rq.T("FormErrPast"))
	case until.Before(from):
		errs = append(errs, rq.T("FormErrOrder"))
	}
	g := consent.Grant{
		Grantee: consent.Grantee{Org: in.Org}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead},
		Categories: in.Categories, Purposes: purposes,
	}
	if len(errs) == 0 {
		if from.After(today) {
			g.NotBefore = from
		}
		g.NotAfter = until.Add(24 * time.Hour) // through the last day
		signed, err := s.hasPasskey(ctx, rq)
		if err != nil {
			return err
		}
		if signed {
			pc, err := s.d.Signing.PrepareGrant(ctx, s.pseudonym(rq), g)
			if err == nil {
				names, _, err := s.orgNames(ctx)
				if err != nil {
					return err
				}
				pg := g
				pg.ID, pg.Patient = pc.ID, pc.Patient
				return s.askSignature(w, rq, pc, rq.describe(pg, names, s.cfg.Now()))
			}
			var pm publicMessage
			if !errorsAs(err, &pm) {
				return err
			}
			errs = append(errs, pm.PublicMessage())
		}
	}
	if len(errs) == 0 {
		stored, _, err := s.d.Changes.Grant(ctx, s.pseudonym(rq), g)
		if err == nil {
			http.Redirect(w, rq.Request, "/app/consents/"+url.PathEscape(stored.ID)+"?granted=1", http.StatusSeeOther)
			return nil
		}
		var pm publicMessage
		if !errorsAs(err, &pm) {
			return err
		}
		errs = append(errs, pm.PublicMessage())
	}
	d, err := s.grantFormData(ctx, rq, in)
	if err != nil {
		return err
	}
	d.Errors = errs
	s.render(w, rq, http.StatusBadRequest, "grant.html", "GrantTitle", d)
	return nil
}

// ownGrant loads grant id if it is the signed-in patient's; any other
// grant is errNotFound, exactly like one that does not exist.
func (s *Server) ownGrant(rq *request) (consent.Grant, error) {
	id := rq.PathValue("id")
	if !consent.ValidID(id) {
		return consent.Grant{}, errNotFound
	}
	if err := s.catchUp(rq); err != nil {
		return consent.Grant{}, err
	}
	g, err := s.d.Consents.Grant(rq.Context(), id)
	if err != nil {
		return consent.Grant{}, err
	}
	if g.Patient != s.pseudonym(rq) {
		return consent.Grant{}, errNotFound
	}
	return g, nil
}

// receiptView is a receipt as the page shows it and receipt.js checks it:
// the entry's public leaf, its inclusion proof and the signed checkpoint,
// and the entry's header and opening (without the patient's pseudonym),
// each as the exact bytes (base64), which the browser hashes.
type receiptView struct {
	Title         string
	Index         uint64
	TreeSize      uint64
	Entry         string // base64 of the leaf
	EntryText     string
	Header        string // base64
	HeaderText    string
	Opening       string // base64
	StatementText string
	Proof         string // space-separated base64 hashes
	Checkpoint    string
}

func (s *Server) receipt(ctx context.Context, title string, index uint64) (receiptView, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := ledger.MakeReceipt(ctx, s.d.Ledger, index)
	if err != nil {
		return receiptView{}, err
	}
	var proof []string
	for _, h := range r.Proof {
		proof = append(proof, base64.StdEncoding.EncodeToString(h[:]))
	}
	v := receiptView{Title: title, Index: r.Index, TreeSize: r.TreeSize, Entry: base64.StdEncoding.EncodeToString(r.Entry),
		EntryText: string(r.Entry), Proof: strings.Join(proof, " "), Checkpoint: string(r.Checkpoint)}
	if len(r.Header) > 0 && len(r.Opening) > 0 {
		// A receipt without them (an entry this gateway cannot open)
		// shows as not verified.
		v.Header, v.HeaderText = base64.StdEncoding.EncodeToString(r.Header), string(r.Header)
		v.Opening = base64.StdEncoding.EncodeToString(r.Opening)
		if o, err := ledger.DecodeOpening(r.Opening); err == nil {
			v.StatementText = string(o.Statement)
		}
	}
	return v, nil
}

func (s *Server) consentPage(w http.ResponseWriter, rq *request) error {
	g, err := s.ownGrant(rq)
	if err != nil {
		return err
	}
	names, _, err := s.orgNames(rq.Context())
	if err != nil {
		return err
	}
	v := rq.describe(g, names, s.cfg.Now())
	var receipts []receiptView
	r, err := s.receipt(rq.Context(), rq.T("ReceiptGrant"), g.GrantedIndex)
	if err != nil {
		return err
	}
	receipts = append(receipts, r)
	if g.Revoked {
		r, err := s.receipt(rq.Context(), rq.T("ReceiptRevoke"), g.RevokedIndex)
		if err != nil {
			return err
		}
		receipts = append(receipts, r)
	}
	q := rq.URL.Query()
	// The receipt names organisations by ID; the page's names for them.
	orgJSON, err := json.Marshal(names)
	if err != nil {
		return err
	}
	s.render(w, rq, http.StatusOK, "consent.html", "ConsentTitle", map[string]any{
		"Grant": v, "Receipts": receipts, "Key": s.cfg.CheckpointKey, "OrgNames": string(orgJSON),
		"Granted": q.Has("granted"), "JustRevoked": q.Has("revoked"),
	})
	return nil
}

func (s *Server) revokeConfirm(w http.ResponseWriter, rq *request) error {
	g, err := s.ownGrant(rq)
	if err != nil {
		return err
	}
	if g.Revoked {
		return consent.ErrAlreadyRevoked
	}
	names, _, err := s.orgNames(rq.Context())
	if err != nil {
		return err
	}
	s.render(w, rq, http.StatusOK, "revoke.html", "RevokeTitle", map[string]any{"Grant": rq.describe(g, names, s.cfg.Now())})
	return nil
}

func (s *Server) revokeSubmit(w http.ResponseWriter, rq *request) error {
	id := rq.PathValue("id")
	if !consent.ValidID(id) {
		return errNotFound
	}
	signed, err := s.hasPasskey(rq.Context(), rq)
	if err != nil {
		return err
	}
	if signed {
		g, err := s.ownGrant(rq)
		if err != nil {
			return err
		}
		pc, err := s.d.Signing.PrepareRevoke(rq.Context(), s.pseudonym(rq), id)
		if err != nil {
			return err
		}
		names, _, err := s.orgNames(rq.Context())
		if err != nil {
			return err
		}
		return s.askSignature(w, rq, pc, rq.describe(g, names, s.cfg.Now()))
	}
	if _, _, err := s.d.Changes.Revoke(rq.Context(), s.pseudonym(rq), id); err != nil {
		return err
	}
	http.Redirect(w, rq.Request, "/app/consents/"+url.PathEscape(id)+"?revoked=1", http.StatusSeeOther)
	return nil
}

// eventFilter is the access log's and the audit search's filter form.
type eventFilter struct {
	Org        string
	Decision   string
	BreakGlass bool
	Since      string
	Until      string
	Patient    string
	Page       int
}

func readFilter(q url.Values) (eventFilter, consent.AuditFilter, error) {
	f := eventFilter{Org: strings.TrimSpace(q.Get("org")), Decision: q.Get("decision"), BreakGlass: q.Get("break_glass") == "true",
		Since: q.Get("since"), Until: q.Get("until"), Patient: strings.TrimSpace(q.Get("patient"))}
	var af consent.AuditFilter
	af.Org = f.Org
	af.Decision = consent.Effect(f.Decision)
	if f.BreakGlass {
		t := true
		af.BreakGlass = &t
	}
	if f.Since != "" {
		t, ok := parseDay(f.Since)
		if !ok {
			return f, af, errBadRequest
		}
		af.Since = t
	}
	if f.Until != "" {
		t, ok := parseDay(f.Until)
		if !ok {
			return f, af, errBadRequest
		}
		af.Until = t.Add(24 * time.Hour)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxListed {
			return f, af, errBadRequest
		}
		f.Page = n
	}
	return f, af, af.Validate()
}

// matches applies an audit filter to one event (the patient's log is not
// filtered by the store).
func matches(af consent.AuditFilter, e consent.AccessEvent) bool {
	switch {
	case af.Org != "" && e.Requester != af.Org,
		af.Decision != "" && e.Decision != af.Decision,
		af.BreakGlass != nil && e.BreakGlass != *af.BreakGlass,
		!af.Since.IsZero() && e.Time.Before(af.Since),
		!af.Until.IsZero() && !e.Time.Before(af.Until):
		return false
	}
	return true
}

// pageSize is the rows per page of the event tables.
const pageSize = 50

func (s *Server) accessPage(w http.ResponseWriter, rq *request) error {
	f, af, err := readFilter(rq.URL.Query())
	if err != nil {
		return err
	}
	ctx := rq.Context()
	if err := s.catchUp(rq); err != nil {
		return err
	}
	all, err := collect(func(p consent.Page) ([]consent.AccessEvent, string, error) {
		return s.d.Consents.AccessLog(ctx, s.pseudonym(rq), p)
	})
	if err != nil {
		return err
	}
	names, orgs, err := s.orgNames(ctx)
	if err != nil {
		return err
	}
	var kept []consent.AccessEvent
	var breakGlass []eventView
	for _, e := range all {
		if e.BreakGlass {
			breakGlass = append(breakGlass, rq.event(e, names))
		}
		if matches(af, e) {
			kept = append(kept, e)
		}
	}
	rows, prev, next := pageOf(kept, f.Page)
	var views []eventView
	for _, e := range rows {
		views = append(views, rq.event(e, names))
	}
	s.render(w, rq, http.StatusOK, "access.html", "AccessTitle", map[string]any{
		"Filter": f, "Events": views, "Chart": rq.dailyChart(kept, s.cfg.Now()), "BreakGlass": breakGlass,
		"Orgs": orgs, "Total": len(kept), "Prev": prev, "Next": next, "PrevURL": pageURL(rq.URL, prev), "NextURL": pageURL(rq.URL, next),
	})
	return nil
}

// pageOf slices one page of rows; prev and next are page numbers or -1.
func pageOf[T any](all []T, page int) (rows []T, prev, next int) {
	start := page * pageSize
	prev, next = page-1, -1
	if start >= len(all) {
		return nil, prev, -1
	}
	end := min(start+pageSize, len(all))
	if end < len(all) {
		next = page + 1
	}
	return all[start:end], prev, next
}

func pageURL(u *url.URL, page int) string {
	if page < 0 {
		return ""
	}
	q := u.Query()
	q.Set("page", strconv.Itoa(page))
	q.Del("lang")
	return u.Path + "?" + q.Encode()
}
