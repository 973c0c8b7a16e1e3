package fhir

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrInvalidSearch is wrapped by the errors of search parameter parsers;
// their text is written for the client.
var ErrInvalidSearch = errors.New("fhir: invalid search parameter")

// DateParam is one value of a FHIR date search parameter
// ("date=ge2026-03-01"): a comparator prefix and the range of instants
// [From, To) that the value's precision denotes (a day, a month, …).
type DateParam struct {
	// Prefix is eq, ne, gt, lt, ge, le, sa or eb (eq when the value has
	// none).
	Prefix string
	From   time.Time
	To     time.Time
	// Raw is the parameter's value as given (for the self link).
	Raw string
}

var datePattern = regexp.MustCompile(`^([a-z]{2})?([0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?)$`)

// ParseDate parses a date search parameter value: an optional prefix (eq,
// ne, gt, lt, ge, le, sa, eb; ap is not supported) and a FHIR date or
// dateTime of any precision (2026, 2026-03, 2026-03-01,
// 2026-03-01T10:00Z, 2026-03-01T10:00:00.5+01:00). A time without a zone
// is UTC. Errors wrap ErrInvalidSearch.
func ParseDate(v string) (DateParam, error) {
	m := datePattern.FindStringSubmatch(v)
	if m == nil {
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return DateParam{}, fmt.Errorf("%w: date %q is not [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]] (prefixes eq, ne, gt, lt, ge, le, sa, eb)", ErrInvalidSearch, v)
	}
	p := DateParam{Prefix: m[1], Raw: v}
	switch p.Prefix {
	case "":
		p.Prefix = "eq"
	case "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb":
	default:
		return DateParam{}, fmt.Errorf("%w: date prefix %q is not supported (use eq, ne, gt, lt, ge, le, sa or eb)", ErrInvalidSearch, m[1])
	}
	s := m[2]
	var (
		err  error
		from time.Time
		to   func(time.Time) time.Time
	)
	switch {
	case len(s) == 4:
		from, err = time.Parse("2006", s)
		to = func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case len(s) == 7:
		from, err = time.Parse("2006-01", s)
		to = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case len(s) == 10:
		from, err = time.Parse("2006-01-02", s)
		to = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	default:
		date, clock, _ := strings.Cut(s, "T")
		zone := "Z"
		if i := strings.IndexAny(clock, "Z+-"); i >= 0 {
			clock, zone = clock[:i], clock[i:]
		}
		var unit time.Duration
		layout := "15:04"
		switch {
		case len(clock) == 5:
			unit = time.Minute
		case len(clock) == 8:
			layout, unit = "15:04:05", time.Second
		default:
			frac := len(clock) - 9
			layout, unit = "15:04:05."+strings.Repeat("0", frac), time.Duration(pow10(9-frac))
		}
		zl := "Z07:00"
		from, err = time.Parse("2006-01-02T"+layout+zl, date+"T"+clock+zone)
		to = func(t time.Time) time.Time { return t.Add(unit) }
	}
	if err != nil {
		return DateParam{}, fmt.Errorf("%w: date %q is not a valid date", ErrInvalidSearch, v)
	}
	p.From, p.To = from.UTC(), to(from).UTC()
	return p, nil
}

func pow10(n int) int64 {
	r := int64(1)
	for range n {
		r *= 10
	}
	return r
}

// Matches reports whether instant t satisfies the parameter: eq, t in
// [From, To); ne, not; gt and sa, t at or after To; lt and eb, t before
// From; ge, t at or after From; le, t before To.
func (p DateParam) Matches(t time.Time) bool {
	in := !t.Before(p.From) && t.Before(p.To)
	switch p.Prefix {
	case "ne":
		return !in
	case "gt", "sa":
		return !t.Before(p.To)
	case "lt", "eb":
		return t.Before(p.From)
	case "ge":
		return !t.Before(p.From)
	case "le":
		return t.Before(p.To)
	}
	return in
}

// DateParams are several date parameters, all of which must match
// (date=ge2026-01-01&date=lt2026-02-01).
type DateParams []DateParam

// ParseDates parses every value of a date parameter.
func ParseDates(vs []string) (DateParams, error) {
	var out DateParams
	for _, v := range vs {
		// A comma-separated list would be an OR; it is not supported.
		if strings.Contains(v, ",") {
			return nil, fmt.Errorf("%w: a date parameter takes one value (repeat the parameter to combine)", ErrInvalidSearch)
		}
		p, err := ParseDate(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Matches reports whether t satisfies every parameter.
func (ps DateParams) Matches(t time.Time) bool {
	for _, p := range ps {
		if !p.Matches(t) {
			return false
		}
	}
	return true
}
