package fhir_test

import (
	"errors"
	"testing"
	"time"

	"github.com/healthgw/healthgw/fhir"
)

func TestParseDate(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		in, prefix, from, to string
	}{
		{"2026", "eq", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"ge2026-03", "ge", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"lt2026-03-01", "lt", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"gt2026-03-01T10:00Z", "gt", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z"},
		{"le2026-03-01T10:00:05+01:00", "le", "2026-03-01T09:00:05Z", "2026-03-01T09:00:06Z"},
		{"ne2026-03-01T10:00:05.25Z", "ne", "2026-03-01T10:00:05.25Z", "2026-03-01T10:00:05.26Z"},
		{"sa2026-03-01T10:00", "sa", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z"},
	} {
		p, err := fhir.ParseDate(tt.in)
		if err != nil {
			t.Errorf("ParseDate(%q): %v", tt.in, err)
			continue
		}
		if p.Prefix != tt.prefix || !p.From.Equal(at(tt.from)) || !p.To.Equal(at(tt.to)) || p.Raw != tt.in {
			t.Errorf("ParseDate(%q) = %s [%s, %s), want %s [%s, %s)", tt.in, p.Prefix, p.From, p.To, tt.prefix, tt.from, tt.to)
		}
	}
	for _, in := range []string{"", "yesterday", "ap2026", "2026-13", "2026-02-30", "2026-3-1", "xx2026", "2026-03-01T25:00Z", "ge", "2026-03-01T10Z"} {
		if _, err := fhir.ParseDate(in); !errors.Is(err, fhir.ErrInvalidSearch) {
			t.Errorf("ParseDate(%q): err = %v, want ErrInvalidSearch", in, err)
		}
	}
}

func TestDateMatches(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	before, inside, after := day.Add(-time.Nanosecond), day.Add(12*time.Hour), day.AddDate(0, 0, 1)
	for _, tt := range []struct {
		prefix                string
		before, inside, after bool
	}{
		{"eq", false, true, false},
		{"ne", true, false, true},
		{"gt", false, false, true},
		{"lt", true, false, false},
		{"ge", false, true, true},
		{"le", true, true, false},
		{"sa", false, false, true},
		{"eb", true, false, false},
	} {
		p, err := fhir.ParseDate(tt.prefix + "2026-03-01")
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]bool{p.Matches(before), p.Matches(inside), p.Matches(after)}; got != [3]bool{tt.before, tt.inside, tt.after} {
			t.Errorf("%s2026-03-01 matches (before, inside, after) = %v, want %v", tt.prefix, got, [3]bool{tt.before, tt.inside, tt.after})
		}
	}
	ps, err := fhir.ParseDates([]string{"ge2026-03-01", "lt2026-03-02"})
	if err != nil {
		t.Fatal(err)
	}
	if !ps.Matches(inside) || ps.Matches(before) || ps.Matches(after) {
		t.Errorf("a range of two parameters does not match as an AND")
	}
	if _, err := fhir.ParseDates([]string{"ge2026,lt2027"}); !errors.Is(err, fhir.ErrInvalidSearch) {
		t.Errorf("a comma list: %v", err)
	}
}

// FuzzParseDate: any input parses or fails with ErrInvalidSearch, and a
// parsed range is never empty.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026", "ge2026-03-01T10:00:05.123+01:00", "lt2026-03", "ap2026", "2026-02-30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := fhir.ParseDate(s)
		if err != nil {
			if !errors.Is(err, fhir.ErrInvalidSearch) {
				t.Fatalf("ParseDate(%q): %v", s, err)
			}
			return
		}
		if !p.From.Before(p.To) {
			t.Fatalf("ParseDate(%q): empty range [%s, %s)", s, p.From, p.To)
		}
	})
}
