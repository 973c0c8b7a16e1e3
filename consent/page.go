package consent

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/internal/truncate"
)

// Page sizes for the list queries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page asks for one page of a list. Every list is ordered newest first
// (descending ledger index); Cursor is the NextCursor of the page before,
// or "" for the first page.
type Page struct {
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, and values above
	// MaxPageSize mean MaxPageSize.
	Limit int
}

// Size returns the effective page size.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// Before decodes the cursor: the list continues with ledger indices below
// the returned one. ok is false for the first page.
func (p Page) Before() (index uint64, ok bool, err error) {
	if p.Cursor == "" {
		return 0, false, nil
	}
	index, err = DecodeCursor(p.Cursor)
	return index, err == nil, err
}

// cursorVersion leads every cursor so that the format can change.
const cursorVersion = 1

// EncodeCursor returns the opaque cursor that continues a list after the
// item at ledger index (with older items).
func EncodeCursor(index uint64) string {
	var b [9]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], index)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a cursor made by EncodeCursor. Errors wrap
// ErrInvalidCursor.
func DecodeCursor(s string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != cursorVersion {
		return 0, fmt.Errorf("%w: %q", ErrInvalidCursor, truncate.String(s, 32))
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}

// AuditFilter selects access events for the regulator's query. Zero fields
// do not filter.
type AuditFilter struct {
	Patient string // pseudonym
	Org     string // requester org ID
	// Decision is Permit, Deny or "" for both.
	Decision Effect
	// BreakGlass, when set, keeps only events whose break-glass flag equals
	// it.
	BreakGlass *bool
	// Since (inclusive) and Until (exclusive) bound the entry time.
	Since, Until time.Time
}

// FilterError is an AuditFilter that failed Validate; Message is safe to
// show the caller. It wraps ErrInvalidFilter.
type FilterError struct {
	Message string
}

func (e *FilterError) Error() string { return ErrInvalidFilter.Error() + ": " + e.Message }

// Unwrap returns ErrInvalidFilter.
func (e *FilterError) Unwrap() error { return ErrInvalidFilter }

// PublicMessage returns Message.
func (e *FilterError) PublicMessage() string { return e.Message }

// Validate checks the filter. Errors are *FilterError.
func (f AuditFilter) Validate() error {
	if f.Decision != "" && !f.Decision.Valid() {
		return &FilterError{Message: "decision must be permit or deny."}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return &FilterError{Message: "until must be after since."}
	}
	return nil
}
