package web

import (
	"strings"
	"time"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

// orgNames maps org IDs to display names.
type orgNames map[string]string

func (n orgNames) of(id string) string {
	if v, ok := n[id]; ok && v != "" {
		return v
	}
	return id
}

// lastDay is the last day a period ending (exclusively) at t covers.
func lastDay(t time.Time) time.Time { return t.Add(-time.Second) }

// grantView is a grant in plain language.
type grantView struct {
	ID        string
	Status    consent.Status
	StatusTxt string
	Sentence  string
	Who       string
	Sensitive bool
	Revocable bool
	Granted   string
	Revoked   string
	Index     uint64
	RevIndex  uint64
	IsRevoked bool
	Signed    bool
}

// categoryName is a category's plain name ("lab results").
func (t text) categoryName(c string) string { return t.T("Cat_" + msgKey(c)) }

// categoryInfo is a category's plain-language explanation.
func (t text) categoryInfo(c string) string { return t.T("CatInfo_" + msgKey(c)) }

func (t text) purposeName(p consent.Purpose) string { return t.T("Purpose_" + string(p)) }

// msgKey turns a vocabulary code into a message ID suffix ("mental-health"
// → "mental_health", "deny.no-grant" → "deny_no_grant").
func msgKey(code string) string { return strings.NewReplacer(".", "_", "-", "_").Replace(code) }

// describe renders g in the patient's language: who may read what, for
// which purposes, until when.
func (t text) describe(g consent.Grant, names orgNames, now time.Time) grantView {
	v := grantView{ID: g.ID, Status: g.Status(now), Index: g.GrantedIndex, IsRevoked: g.Revoked, RevIndex: g.RevokedIndex, Signed: g.Signed}
	v.StatusTxt = t.T("Status_" + string(v.Status))
	switch {
	case g.Grantee.Org != "":
		v.Who = names.of(g.Grantee.Org)
	default:
		v.Who = t.T("GranteeKind_" + string(g.Grantee.Kind))
	}
	var what []string
	for _, c := range g.Categories {
		what = append(what, t.categoryName(c))
		if records.Category(c).Sensitive() {
			v.Sensitive = true
		}
	}
	whatS := t.list(what, "ListAnd")
	if len(g.Categories) == 0 {
		whatS = t.T("AllRecords")
	}
	if len(g.RecordIDs) > 0 {
		whatS = t.T("SpecificRecords", "What", whatS, "N", len(g.RecordIDs))
	}
	var why []string
	for _, p := range g.Purposes {
		why = append(why, t.purposeName(p))
	}
	whyS := t.list(why, "ListOr")
	if len(why) == 0 {
		whyS = t.T("AnyPurpose")
	}
	args := []any{"Who", v.Who, "What", whatS, "Why", whyS, "From", t.Date(g.NotBefore), "Until", t.Date(lastDay(g.NotAfter)), "RevokedOn", t.Date(g.RevokedAt)}
	id := "Sentence_" + string(v.Status)
	if g.Effect == consent.Deny {
		id = "SentenceDeny_" + string(v.Status)
	}
	v.Sentence = t.T(id, args...)
	v.Granted = t.DateTime(g.GrantedAt)
	if g.Revoked {
		v.Revoked = t.DateTime(g.RevokedAt)
	}
	v.Revocable = !g.Revoked
	return v
}

// eventView is an access decision in plain language.
type eventView struct {
	Index      uint64
	When       string
	Who        string
	Why        string
	What       string
	Permitted  bool
	Decision   string
	Reason     string
	BreakGlass bool
	Patient    string
	Requester  string
	RecordID   string
}

func (t text) event(e consent.AccessEvent, names orgNames) eventView {
	v := eventView{
		Index: e.Index, When: t.DateTime(e.Time), Who: names.of(e.Requester), Requester: e.Requester,
		Why: t.purposeName(e.Purpose), What: t.categoryName(e.Category), Permitted: e.Decision == consent.Permit,
		BreakGlass: e.BreakGlass, Patient: e.Patient, RecordID: e.RecordID,
	}
	if e.Purpose == "" {
		v.Why = t.T("NoPurpose")
	}
	if e.Category == "" {
		v.What = t.T("UnknownRecord")
	}
	if v.Permitted {
		v.Decision = t.T("DecisionPermit")
	} else {
		v.Decision = t.T("DecisionDeny")
	}
	v.Reason = t.T("Reason_" + msgKey(string(e.Reason)))
	return v
}
