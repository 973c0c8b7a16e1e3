package access_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

// TestPageRecords: following the cursors lists every record exactly
// once, newest first, in pages of the asked size; a bad cursor is
// refused.
func TestPageRecords(t *testing.T) {
	var recs []records.Record
	for i, idx := range []uint64{7, 3, 12, 9, 1, 30, 4} {
		recs = append(recs, records.Record{ID: fmt.Sprintf("r%d", i), LedgerIndex: idx})
	}
	for _, limit := range []int{1, 2, 3, 7, 50} {
		var got []uint64
		p := consent.Page{Limit: limit}
		for pages := 0; ; pages++ {
			if pages > len(recs) {
				t.Fatalf("limit %d: the cursors do not end", limit)
			}
			page, next, err := access.PageRecords(recs, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit || (next != "" && len(page) != limit) {
				t.Errorf("limit %d: a page of %d (next %q)", limit, len(page), next)
			}
			for _, r := range page {
				got = append(got, r.LedgerIndex)
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if want := []uint64{30, 12, 9, 7, 4, 3, 1}; !slices.Equal(got, want) {
			t.Errorf("limit %d: %v, want %v", limit, got, want)
		}
	}
	if page, next, err := access.PageRecords(nil, consent.Page{}); err != nil || len(page) != 0 || next != "" {
		t.Errorf("no records: %v %q %v", page, next, err)
	}
	if _, _, err := access.PageRecords(recs, consent.Page{Cursor: "nope"}); !errors.Is(err, consent.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}
