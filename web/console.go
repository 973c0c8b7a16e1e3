package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/fhir"
	"github.com/healthgw/healthgw/ledger"
)

// staffPage wraps console page handlers: the staff member's organisation
// must still be a regulator holding audit.read.
func (s *Server) staffPage(h handler) handler {
	return func(w http.ResponseWriter, rq *request) error {
		if err := s.requireStaff(rq); err != nil {
			return err
		}
		return h(w, rq)
	}
}

func (s *Server) consoleHome(w http.ResponseWriter, rq *request) error {
	if !(rq.has && rq.sess.signedIn()) {
		s.render(w, rq, http.StatusOK, "console_home.html", "ConsoleTitle", map[string]any{"SignedOut": rq.URL.Query().Has("signedout")})
		return nil
	}
	return s.staffPage(s.ledgerPage)(w, rq)
}

// ledgerStatus is the latest checkpoint and how old the newest entry it
// covers is (a C2SP checkpoint carries no time of its own), and the
// witnesses' cosignatures.
type ledgerStatus struct {
	Size       uint64
	Root       string
	Origin     string
	Checkpoint string
	Newest     string
	Age        string
	Key        string
	Witnessing witnessStatus
}

// witnessStatus is which witnesses cosigned the latest checkpoint the
// gateway submitted to them (which may lag the latest by one
// submission) and whether that meets the threshold.
type witnessStatus struct {
	Configured bool
	Submitted  bool // a checkpoint has been submitted
	Size       uint64
	Root       string
	Witnesses  []witnessView
	Cosigned   int
	Threshold  int
	Met        bool
	Keys       string // the witnesses' verifier keys, space-separated, for the page's script
}

type witnessView struct {
	Name, KeyID, Time string
	Cosigned          bool
}

// witnessStatus checks each witness's cosignature on the cosigned
// checkpoint (C2SP tlog-cosignature/v1, golang.org/x/mod/sumdb/note with
// transparency-dev/formats verifiers), as `healthgw ledger verify
// --witness` does.
func (s *Server) witnessStatus(rq *request) witnessStatus {
	ws := witnessStatus{Configured: len(s.witnesses) > 0, Threshold: s.cfg.WitnessThreshold, Keys: strings.Join(s.cfg.Witnesses, " ")}
	if !ws.Configured {
		return ws
	}
	var raw []byte
	if s.d.Cosigned != nil {
		raw = s.d.Cosigned.Cosigned()
	}
	if c, err := ledger.ParseCheckpoint(raw); err == nil {
		ws.Submitted, ws.Size, ws.Root = true, c.Size, c.Hash.String()
	}
	for _, v := range s.witnesses {
		wv := witnessView{Name: v.Name(), KeyID: fmt.Sprintf("%08x", v.KeyHash())}
		if ws.Submitted {
			if n, err := note.Open(raw, note.VerifierList(v)); err == nil && len(n.Sigs) == 1 {
				wv.Cosigned = true
				ws.Cosigned++
				if t, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err == nil {
					wv.Time = rq.DateTime(t)
				}
			}
		}
		ws.Witnesses = append(ws.Witnesses, wv)
	}
	ws.Met = ws.Cosigned >= ws.Threshold
	return ws
}

func (s *Server) ledgerStatus(ctx context.Context, rq *request) (ledgerStatus, error) {
	raw, err := s.d.Ledger.Checkpoint(ctx)
	if err != nil {
		return ledgerStatus{}, err
	}
	c, err := ledger.ParseCheckpoint(raw)
	if err != nil {
		return ledgerStatus{}, err
	}
	st := ledgerStatus{Size: c.Size, Root: c.Hash.String(), Origin: c.Origin, Checkpoint: string(raw), Key: s.cfg.CheckpointKey,
		Witnessing: s.witnessStatus(rq)}
	if c.Size > 0 {
		es, err := s.d.Ledger.Entries(ctx, c.Size-1, c.Size)
		if err != nil {
			return ledgerStatus{}, err
		}
		// The public leaf carries the entry's time.
		if l, err := ledger.DecodeLeaf(es[0]); err == nil {
			st.Newest = rq.DateTime(l.Time)
			st.Age = rq.T("AgeSeconds", "N", int(s.cfg.Now().Sub(l.Time).Seconds()))
		}
	}
	return st, nil
}

func (s *Server) ledgerPage(w http.ResponseWriter, rq *request) error {
	if err := s.requireStaff(rq); err != nil {
		return err
	}
	st, err := s.ledgerStatus(rq.Context(), rq)
	if err != nil {
		return err
	}
	s.render(w, rq, http.StatusOK, "ledger.html", "LedgerTitle", map[string]any{"Status": st, "Org": rq.sess.Org})
	return nil
}

// auditFilter reads the console's filters; patient is a patient ID or a
// pseudonym (as the API's).
func (s *Server) auditFilter(q url.Values) (eventFilter, consent.AuditFilter, error) {
	f, af, err := readFilter(q)
	if err != nil {
		return f, af, err
	}
	if f.Patient != "" {
		if consent.ValidPseudonym(f.Patient) {
			af.Patient = f.Patient
		} else {
			af.Patient = s.d.Pseud.Pseudonym(f.Patient)
		}
	}
	return f, af, nil
}

func (s *Server) auditPage(w http.ResponseWriter, rq *request) error {
	return s.staffPage(func(w http.ResponseWriter, rq *request) error {
		return s.auditList(w, rq, rq.URL.Query(), "audit.html", "AuditTitle")
	})(w, rq)
}

func (s *Server) breakGlassPage(w http.ResponseWriter, rq *request) error {
	return s.staffPage(func(w http.ResponseWriter, rq *request) error {
		q := rq.URL.Query()
		q.Set("break_glass", "true")
		return s.auditList(w, rq, q, "breakglass.html", "BreakGlassTitle")
	})(w, rq)
}

func (s *Server) auditList(w http.ResponseWriter, rq *request, q url.Values, tmpl, title string) error {
	f, af, err := s.auditFilter(q)
	if err != nil {
		return err
	}
	ctx := rq.Context()
	if err := s.catchUp(rq); err != nil {
		return err
	}
	cursor := q.Get("cursor")
	evs, next, err := s.d.Consents.AuditEvents(ctx, af, consent.Page{Cursor: cursor, Limit: pageSize})
	if err != nil {
		return err
	}
	names, orgs, err := s.orgNames(ctx)
	if err != nil {
		return err
	}
	var views []eventView
	for _, e := range evs {
		views = append(views, rq.event(e, names))
	}
	exp := url.Values{}
	for k, v := range q {
		if k != "cursor" && k != "lang" && k != "page" {
			exp[k] = v
		}
	}
	nextURL := ""
	if next != "" {
		nq := url.Values{}
		for k, v := range exp {
			nq[k] = v
		}
		nq.Set("cursor", next)
		nextURL = rq.URL.Path + "?" + nq.Encode()
	}
	first := ""
	if cursor != "" {
		first = rq.URL.Path + "?" + exp.Encode()
	}
	s.render(w, rq, http.StatusOK, tmpl, title, map[string]any{
		"Filter": f, "Events": views, "Orgs": orgs, "NextURL": nextURL, "FirstURL": first,
		"CSV": "/console/audit.csv?" + exp.Encode(), "FHIR": "/console/audit.fhir.json?" + exp.Encode(),
	})
	return nil
}

// AsOfHeader is the response header of the console's exports that gives
// the ledger size the export is complete for (the API's as_of; the FHIR
// export also carries it in the Bundle's meta).
const AsOfHeader = "X-Ledger-As-Of"

// selection loads every event matching the filter (up to maxListed).
func (s *Server) selection(rq *request, af consent.AuditFilter) ([]consent.AccessEvent, error) {
	if err := s.catchUp(rq); err != nil {
		return nil, err
	}
	ctx := rq.Context()
	return collect(func(p consent.Page) ([]consent.AccessEvent, string, error) {
		return s.d.Consents.AuditEvents(ctx, af, p)
	})
}

func (s *Server) auditCSV(w http.ResponseWriter, rq *request) error {
	return s.staffPage(func(w http.ResponseWriter, rq *request) error {
		_, af, err := s.auditFilter(rq.URL.Query())
		if err != nil {
			return err
		}
		evs, err := s.selection(rq, af)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set(AsOfHeader, strconv.FormatUint(rq.asOf, 10))
		w.Header().Set("Content-Disposition", `attachment; filename="healthgw-audit.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"ledger_index", "time", "requester", "record_id", "patient", "category", "purpose", "decision", "reason", "grant_id", "break_glass", "justification_commitment", "request_id"})
		for _, e := range evs {
			_ = cw.Write([]string{strconv.FormatUint(e.Index, 10), e.Time.UTC().Format(time.RFC3339Nano), csvSafe(e.Requester), csvSafe(e.RecordID),
				e.Patient, csvSafe(e.Category), csvSafe(string(e.Purpose)), string(e.Decision), string(e.Reason), csvSafe(e.GrantID),
				strconv.FormatBool(e.BreakGlass), e.JustificationCommitment, csvSafe(e.RequestID)})
		}
		cw.Flush()
		return nil
	})(w, rq)
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsAny(v[:1], "=+-@\t\r") {
		return "'" + v
	}
	return v
}

func (s *Server) auditFHIR(w http.ResponseWriter, rq *request) error {
	return s.staffPage(func(w http.ResponseWriter, rq *request) error {
		_, af, err := s.auditFilter(rq.URL.Query())
		if err != nil {
			return err
		}
		evs, err := s.selection(rq, af)
		if err != nil {
			return err
		}
		n := len(evs)
		b := fhir.AuditEventBundle(evs, fhir.Links{Base: s.cfg.BaseURL + "/fhir", Total: &n, AsOf: rq.asOf})
		w.Header().Set(AsOfHeader, strconv.FormatUint(rq.asOf, 10))
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Content-Disposition", `attachment; filename="healthgw-audit.fhir.json"`)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	})(w, rq)
}

func (s *Server) hospitalsPage(w http.ResponseWriter, rq *request) error {
	return s.staffPage(func(w http.ResponseWriter, rq *request) error {
		evs, err := s.selection(rq, consent.AuditFilter{})
		if err != nil {
			return err
		}
		names, _, err := s.orgNames(rq.Context())
		if err != nil {
			return err
		}
		by := map[string][]consent.AccessEvent{}
		for _, e := range evs {
			by[e.Requester] = append(by[e.Requester], e)
		}
		type hosp struct {
			ID, Name string
			Chart    chart
			Permits  int
			Denials  int
		}
		var hs []hosp
		for id, es := range by {
			h := hosp{ID: id, Name: names.of(id), Chart: rq.dailyChart(es, s.cfg.Now())}
			for _, e := range es {
				if e.Decision == consent.Permit {
					h.Permits++
				} else {
					h.Denials++
				}
			}
			hs = append(hs, h)
		}
		slices.SortFunc(hs, func(a, b hosp) int { return strings.Compare(a.Name, b.Name) })
		s.render(w, rq, http.StatusOK, "hospitals.html", "HospitalsTitle", map[string]any{"Hospitals": hs, "Total": len(evs)})
		return nil
	})(w, rq)
}
