package consentstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/database"
)

// GrantsForPatient returns every grant of the patient, revoked and expired
// ones included, oldest first (ledger order): the grants argument of
// consent.Decide.
func (s *Store) GrantsForPatient(ctx context.Context, patient string) ([]consent.Grant, error) {
	rows, err := findGrants(s.db.WithContext(ctx).Where("patient = ?", patient).Order("granted_index"))
	if err != nil {
		return nil, fmt.Errorf("load grants of patient: %w", err)
	}
	return grantsFromRows(rows)
}

// GrantsFor returns the patient's grants, revoked and expired ones
// included, that name organisation org or its kind, oldest first. Decide
// ignores every other grant, so on the read path GrantsFor gives the same
// decisions as GrantsForPatient while loading only the grants that concern
// the requester.
func (s *Store) GrantsFor(ctx context.Context, patient, org string, kind auth.Kind) ([]consent.Grant, error) {
	// Two queries, each served by a (patient, grantee) index, merged by
	// ledger index: SQLite's planner does not use the indexes for the OR.
	var rows []grantRow
	for _, c := range []struct{ col, val string }{{"grantee_org", org}, {"grantee_kind", string(kind)}} {
		if c.val == "" {
			continue
		}
		part, err := findGrants(s.db.WithContext(ctx).Where("patient = ? AND "+c.col+" = ?", patient, c.val).Order("granted_index"))
		if err != nil {
			return nil, fmt.Errorf("load grants of patient for grantee: %w", err)
		}
		rows = mergeByIndex(rows, part)
	}
	return grantsFromRows(rows)
}

// grantColumns are the columns findGrants and GrantsMatching scan, in
// scanGrants' order.
var grantColumns = []string{
	"id", "patient", "granted_index", "grantee_org", "grantee_kind", "effect",
	"actions", "categories", "record_ids", "resource_types", "purposes",
	"not_before", "not_after", "granted_at", "revoked", "revoked_index", "revoked_at", "signed",
}

// matchingSQL loads the grants filed under a request's index keys, in
// ledger order: one statement of a fixed shape (two grantee keys, four
// scope keys), served by the index's primary key. A grant filed under
// two of the keys comes twice; GrantsMatching drops the repeat.
// It runs straight on the connection pool (database.Statement): gorm's
// statement building cost more than the indexed lookup on every read.
var matchingSQL = database.NewStatement("SELECT g." + strings.Join(grantColumns, ", g.") +
	" FROM consent_grant_scopes s JOIN consent_grants g ON g.granted_index = s.granted_index" +
	" WHERE s.patient = ? AND s.grantee IN (?, ?) AND s.scope IN (?, ?, ?, ?)" +
	" ORDER BY s.granted_index")

// GrantsMatching returns the grants of req's patient, revoked and expired
// ones included, that can decide req, oldest first: those filed under
// req's index keys (consent.Request.RequestKeys). consent.Decide on them
// gives the decision it gives on GrantsForPatient (every grant it would
// consider is among them), while the read loads a few rows however many
// grants the patient has for the requester's other records, categories
// or resource types.
func (s *Store) GrantsMatching(ctx context.Context, req consent.Request) ([]consent.Grant, error) {
	gk, sk := req.RequestKeys()
	rows, err := matchingSQL.Query(ctx, s.db, req.Patient, gk[0], gk[1], sk[0], sk[1], sk[2], sk[3])
	if err != nil {
		return nil, fmt.Errorf("load grants for request: %w", err)
	}
	found, err := scanGrants(rows)
	if err != nil {
		return nil, fmt.Errorf("load grants for request: %w", err)
	}
	out := found[:0]
	for _, r := range found {
		if n := len(out); n > 0 && out[n-1].GrantedIndex == r.GrantedIndex {
			continue
		}
		out = append(out, r)
	}
	return grantsFromRows(out)
}

// mergeByIndex merges two lists of distinct grants sorted by ledger index.
func mergeByIndex(a, b []grantRow) []grantRow {
	if len(a) == 0 {
		return b
	}
	out := make([]grantRow, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].GrantedIndex < b[0].GrantedIndex {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// forGrantee restricts q to grants naming org or kind. ok is false when
// both are empty: nothing can match.
func forGrantee(q *gorm.DB, org string, kind auth.Kind) (_ *gorm.DB, ok bool) {
	switch {
	case org != "" && kind != "":
		return q.Where("(grantee_org = ? OR grantee_kind = ?)", org, string(kind)), true
	case org != "":
		return q.Where("grantee_org = ?", org), true
	case kind != "":
		return q.Where("grantee_kind = ?", string(kind)), true
	}
	return q, false
}

// Grant returns the grant with consent ID id, revoked or not. It returns an
// error wrapping consent.ErrNotFound if there is none.
func (s *Store) Grant(ctx context.Context, id string) (consent.Grant, error) {
	var r grantRow
	err := s.db.WithContext(ctx).Take(&r, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return consent.Grant{}, fmt.Errorf("grant %q: %w", id, consent.ErrNotFound)
	}
	if err != nil {
		return consent.Grant{}, fmt.Errorf("load grant: %w", err)
	}
	return rowToGrant(r)
}

// ListByPatient lists the patient's grants, revoked ones included, newest
// first. It returns the page and the cursor of the next one ("" after the
// last page).
func (s *Store) ListByPatient(ctx context.Context, patient string, p consent.Page) ([]consent.Grant, string, error) {
	q := s.db.WithContext(ctx).Where("patient = ?", patient)
	rows, next, err := paginate[grantRow](q, "granted_index", p, func(r grantRow) uint64 { return r.GrantedIndex })
	if err != nil {
		return nil, "", fmt.Errorf("list grants of patient: %w", err)
	}
	grants, err := grantsFromRows(rows)
	return grants, next, err
}

// ListForGrantee lists the grants (of every patient, revoked ones
// included) that name organisation org or its kind, newest first: what a
// hospital may see. An empty org or kind matches nothing.
func (s *Store) ListForGrantee(ctx context.Context, org string, kind auth.Kind, p consent.Page) ([]consent.Grant, string, error) {
	q, ok := forGrantee(s.db.WithContext(ctx), org, kind)
	if !ok {
		return nil, "", nil
	}
	rows, next, err := paginate[grantRow](q, "granted_index", p, func(r grantRow) uint64 { return r.GrantedIndex })
	if err != nil {
		return nil, "", fmt.Errorf("list grants for grantee: %w", err)
	}
	grants, err := grantsFromRows(rows)
	return grants, next, err
}

// AccessLog lists the access events about a patient, newest first: the
// patient's access history.
func (s *Store) AccessLog(ctx context.Context, patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
	return s.AuditEvents(ctx, consent.AuditFilter{Patient: patient}, p)
}

// AuditEvents lists the access events that f selects, newest first
// (descending ledger index): the regulator's query. f is validated first
// (errors wrap consent.ErrInvalidFilter); a bad cursor gives an error
// wrapping consent.ErrInvalidCursor.
func (s *Store) AuditEvents(ctx context.Context, f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
	if err := f.Validate(); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&eventRow{})
	if f.Patient != "" {
		q = q.Where("patient = ?", f.Patient)
	}
	if f.Org != "" {
		q = q.Where("requester = ?", f.Org)
	}
	if f.Decision != "" {
		q = q.Where("decision = ?", string(f.Decision))
	}
	if f.BreakGlass != nil {
		q = q.Where("break_glass = ?", *f.BreakGlass)
	}
	if n := toNanos(f.Since); n != nil {
		q = q.Where("entry_time >= ?", *n)
	}
	if n := toNanos(f.Until); n != nil {
		q = q.Where("entry_time < ?", *n)
	}
	rows, next, err := paginate[eventRow](q, "ledger_index", p, func(r eventRow) uint64 { return r.LedgerIndex })
	if err != nil {
		return nil, "", fmt.Errorf("list access events: %w", err)
	}
	events := make([]consent.AccessEvent, len(rows))
	for i, r := range rows {
		events[i] = rowToEvent(r)
	}
	return events, next, nil
}

// paginate runs q for one page, newest first by the ledger index column
// col, and returns the rows and the next page's cursor.
func paginate[R any](q *gorm.DB, col string, p consent.Page, index func(R) uint64) ([]R, string, error) {
	before, ok, err := p.Before()
	if err != nil {
		return nil, "", err
	}
	if ok {
		// Indices are below 2^63 in practice; clamp so that a forged cursor
		// cannot overflow the driver's int64.
		q = q.Where(col+" < ?", min(before, math.MaxInt64))
	}
	n := p.Size()
	var rows []R
	if err := q.Order(col + " DESC").Limit(n + 1).Find(&rows).Error; err != nil {
		return nil, "", err
	}
	if len(rows) <= n {
		return rows, "", nil
	}
	rows = rows[:n]
	return rows, consent.EncodeCursor(index(rows[n-1])), nil
}

// findGrants runs q and scans the grant rows without gorm's reflection:
// this is the read path's hot loop (see BenchmarkGrantsForPatient).
func findGrants(q *gorm.DB) ([]grantRow, error) {
	rows, err := q.Model(&grantRow{}).Select(grantColumns).Rows()
	if err != nil {
		return nil, err
	}
	return scanGrants(rows)
}

// scanGrants scans and closes rows of grantColumns.
func scanGrants(rows *sql.Rows) ([]grantRow, error) {
	defer rows.Close()
	var out []grantRow
	for rows.Next() {
		var r grantRow
		err := rows.Scan(&r.ID, &r.Patient, &r.GrantedIndex, &r.GranteeOrg, &r.GranteeKind, &r.Effect,
			&r.Actions, &r.Categories, &r.RecordIDs, &r.ResourceTypes, &r.Purposes,
			&r.NotBefore, &r.NotAfter, &r.GrantedAt, &r.Revoked, &r.RevokedIndex, &r.RevokedAt, &r.Signed)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func grantsFromRows(rows []grantRow) ([]consent.Grant, error) {
	grants := make([]consent.Grant, len(rows))
	for i, r := range rows {
		g, err := rowToGrant(r)
		if err != nil {
			return nil, err
		}
		grants[i] = g
	}
	return grants, nil
}

// Passkeys returns the patient's registered passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, patient string) ([]consent.Passkey, error) {
	var rows []passkeyRow
	if err := s.db.WithContext(ctx).Where("patient = ?", patient).Order("register_index").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load passkeys: %w", err)
	}
	out := make([]consent.Passkey, len(rows))
	for i, r := range rows {
		out[i] = rowToPasskey(r)
	}
	return out, nil
}
