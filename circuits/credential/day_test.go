package credential

import (
	"errors"
	"testing"
	"time"
)

func TestDay(t *testing.T) {
	for _, tc := range []struct {
		text string
		want Day
	}{
		{"1900-01-01", 0},
		{"1900-01-02", 1},
		{"1970-01-01", 25567},
		{"2000-03-01", 36584},
		{"9999-12-31", MaxDay},
	} {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseDay(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseDay(%s) = %d, want %d", tc.text, got, tc.want)
			}
			if s := got.String(); s != tc.text {
				t.Errorf("String() = %s, want %s", s, tc.text)
			}
		})
	}
	for _, bad := range []string{"1899-12-31", "2026-02-30", "26-01-01", ""} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("ParseDay(%q) succeeded", bad)
		}
	}
	if _, err := DayOf(time.Date(1899, 12, 31, 23, 0, 0, 0, time.UTC)); !errors.Is(err, ErrDate) {
		t.Errorf("DayOf before the epoch: %v, want ErrDate", err)
	}
	// DayOf uses the UTC date.
	d, err := DayOf(time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("X", -2*3600)))
	if err != nil || d.String() != "2026-03-02" {
		t.Errorf("DayOf in another zone = %s, %v, want 2026-03-02", d, err)
	}
}

func TestAgeCutoff(t *testing.T) {
	for _, tc := range []struct {
		on    string
		years int
		want  string
	}{
		{"2026-03-01", 18, "2008-03-01"},
		{"2026-02-28", 18, "2008-02-28"}, // born 2008-02-29 turns 18 on 2026-03-01
		{"2024-02-29", 18, "2006-02-28"}, // 2006 has no Feb 29
		{"2024-02-29", 20, "2004-02-29"},
		{"2026-01-01", 0, "2026-01-01"},
	} {
		t.Run(tc.on, func(t *testing.T) {
			on, _ := ParseDay(tc.on)
			got, err := AgeCutoff(on, tc.years)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("AgeCutoff(%s, %d) = %s, want %s", tc.on, tc.years, got, tc.want)
			}
			// The cutoff is the last birth date that is old enough.
			if got.Time().AddDate(tc.years, 0, 0).After(on.Time()) {
				t.Errorf("born on the cutoff is not %d on %s", tc.years, tc.on)
			}
			if !(got + 1).Time().AddDate(tc.years, 0, 0).After(on.Time()) {
				t.Errorf("born the day after the cutoff is already %d on %s", tc.years, tc.on)
			}
		})
	}
	if _, err := AgeCutoff(0, 18); !errors.Is(err, ErrDate) {
		t.Errorf("cutoff before the epoch: %v, want ErrDate", err)
	}
}
