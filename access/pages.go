package access

import (
	"cmp"
	"slices"
	"sort"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

// PageRecords returns page p of a record listing (Readable's), newest
// first (descending ledger index of each record's record.registered
// entry, unique in a log), and the cursor of the next page, "" after the
// last. The cursor is consent.Page's: the page continues with the
// records registered before it. A malformed cursor is
// consent.ErrInvalidCursor.
func PageRecords(recs []records.Record, p consent.Page) ([]records.Record, string, error) {
	before, ok, err := p.Before()
	if err != nil {
		return nil, "", err
	}
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b records.Record) int {
		return cmp.Or(cmp.Compare(b.LedgerIndex, a.LedgerIndex), cmp.Compare(a.ID, b.ID))
	})
	start := 0
	if ok {
		start = sort.Search(len(sorted), func(i int) bool { return sorted[i].LedgerIndex < before })
	}
	end := min(len(sorted), start+p.Size())
	next := ""
	if end < len(sorted) {
		next = consent.EncodeCursor(sorted[end-1].LedgerIndex)
	}
	return sorted[start:end], next, nil
}
