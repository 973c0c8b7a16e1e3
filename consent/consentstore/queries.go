package consentstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

// GrantsForPatient returns every grant of the patient, revoked and expired
// ones included, oldest first (ledger order): the grants argument of
// consent.Decide.
func (s *Store) GrantsForPatient(ctx context.Context, patient string) ([]consent.Grant, error) {
	var rows []grantRow
	err := s.db.WithContext(ctx).Where("patient = ?", patient).Order("granted_index").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load grants of patient: %w", err)
	}
	return grantsFromRows(rows)
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
	q := s.db.WithContext(ctx)
	switch {
	case org != "" && kind != "":
		q = q.Where("grantee_org = ? OR grantee_kind = ?", org, string(kind))
	case org != "":
		q = q.Where("grantee_org = ?", org)
	case kind != "":
		q = q.Where("grantee_kind = ?", string(kind))
	default:
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
