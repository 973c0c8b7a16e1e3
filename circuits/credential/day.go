package credential

import (
	"errors"
	"fmt"
	"time"
)

// Day is a calendar date as the number of days since the epoch 1900-01-01
// (UTC, proleptic Gregorian calendar): 1900-01-01 is day 0, 1970-01-01 is
// day 25567. Dates before the epoch cannot be represented.
type Day uint64

// epoch is day 0.
var epoch = time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC)

// MaxDay is the last representable day (9999-12-31); later dates are
// refused so that every Day formats as YYYY-MM-DD.
const MaxDay Day = 2958463

// ErrDate reports a date that cannot be represented as a Day.
var ErrDate = errors.New("date out of range (1900-01-01 to 9999-12-31)")

// DayOf returns the day on which t falls, in UTC.
func DayOf(t time.Time) (Day, error) {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if d.Before(epoch) {
		return 0, fmt.Errorf("%s: %w", d.Format(time.DateOnly), ErrDate)
	}
	// Unix seconds, not Sub: a Duration overflows after 292 years.
	n := Day((d.Unix() - epoch.Unix()) / 86400)
	if n > MaxDay {
		return 0, fmt.Errorf("%s: %w", d.Format(time.DateOnly), ErrDate)
	}
	return n, nil
}

// ParseDay parses a date in the form YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("parse date: %w", err)
	}
	return DayOf(t)
}

// Time returns midnight UTC at the start of d.
func (d Day) Time() time.Time { return epoch.AddDate(0, 0, int(d)) }

// String formats d as YYYY-MM-DD.
func (d Day) String() string { return d.Time().Format(time.DateOnly) }

// AgeCutoff returns the latest birth date of a person who is at least
// years old on day on: a person born on 2008-02-29 turns 18 on 2026-03-01.
func AgeCutoff(on Day, years int) (Day, error) {
	if years < 0 {
		return 0, fmt.Errorf("age cutoff: negative age %d", years)
	}
	t := on.Time()
	// Go normalises Feb 29 of a non-leap year to Mar 1, so subtracting
	// years from the date of the birthday in question works backwards: the
	// cutoff is the last birth date b with b + years ≤ on.
	c := time.Date(t.Year()-years, t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if c.AddDate(years, 0, 0).After(t) {
		c = c.AddDate(0, 0, -1)
	}
	return DayOf(c)
}
