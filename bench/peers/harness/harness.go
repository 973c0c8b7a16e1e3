// Package harness runs healthgw and a peer on the same work in
// interleaved rounds and summarises the per-round ratios as a table.
//
// Every measurement is a rate (higher is better: entries/s, req/s,
// proofs/s, MB/s). A round measures both sides once, the order
// alternating between rounds so that a slow drift of the shared machine
// does not favour one side; its ratio is healthgw's rate over the peer's.
// The table gives the median ratio of the rounds with their minimum and
// maximum: on a shared machine absolute rates move, ratios of adjacent
// measurements much less.
package harness

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// ErrNoSamples is returned when a summary is asked of no values.
var ErrNoSamples = errors.New("harness: no samples")

// Summary is the median, minimum and maximum of a set of values.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the summary of vs (the median of an even count is the
// mean of the middle two). NaN and infinite values are an error: a ratio
// over a zero rate is not a measurement.
func Summarize(vs []float64) (Summary, error) {
	if len(vs) == 0 {
		return Summary{}, ErrNoSamples
	}
	s := slices.Clone(vs)
	for _, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Summary{}, fmt.Errorf("harness: summarize: value %v", v)
		}
	}
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[n-1], N: n}, nil
}

// Ratios returns a[i]/b[i] for every round. The slices must have the same
// length and b must hold no zero.
func Ratios(a, b []float64) ([]float64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("harness: ratios of %d and %d rounds", len(a), len(b))
	}
	out := make([]float64, len(a))
	for i := range a {
		if b[i] == 0 {
			return nil, fmt.Errorf("harness: round %d: peer rate is zero", i)
		}
		out[i] = a[i] / b[i]
	}
	return out, nil
}

// Measure is one side of a pair: it runs the work for one round and
// returns its rate (higher is better).
type Measure func(round int) (float64, error)

// Result is the per-round rates of both sides of a pair.
type Result struct {
	Healthgw, Peer []float64
}

// Interleave runs rounds rounds of h and p, h first in even rounds and p
// first in odd ones, and returns every round's rates. It stops at the
// first error.
func Interleave(rounds int, h, p Measure) (Result, error) {
	if rounds < 1 {
		return Result{}, fmt.Errorf("harness: %d rounds", rounds)
	}
	var r Result
	for i := range rounds {
		first, second := h, p
		if i%2 == 1 {
			first, second = p, h
		}
		a, err := first(i)
		if err != nil {
			return r, fmt.Errorf("round %d: %w", i, err)
		}
		b, err := second(i)
		if err != nil {
			return r, fmt.Errorf("round %d: %w", i, err)
		}
		if i%2 == 1 {
			a, b = b, a
		}
		r.Healthgw = append(r.Healthgw, a)
		r.Peer = append(r.Peer, b)
	}
	return r, nil
}

// Row is one line of the table. Healthgw and Peer describe each side's
// measured figures in words; Ratio is nil for a row without a pair (a
// skipped pair, or a figure given for context). Note explains a skip or a
// difference.
type Row struct {
	Measure  string
	Healthgw string
	Peer     string
	Ratio    *Summary
	Note     string
}

// RowOf builds the row of a pair from its per-round rates, describing
// each side by the median of its rates with unit.
func RowOf(measure, peer, unit string, r Result) (Row, error) {
	ratios, err := Ratios(r.Healthgw, r.Peer)
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w", measure, err)
	}
	rs, err := Summarize(ratios)
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w", measure, err)
	}
	hs, _ := Summarize(r.Healthgw)
	ps, _ := Summarize(r.Peer)
	return Row{
		Measure:  measure,
		Healthgw: FormatRange(hs, unit),
		Peer:     peer + " " + FormatRange(ps, unit),
		Ratio:    &rs,
	}, nil
}

// FormatRange writes a summary of rates as "median unit (min–max)".
func FormatRange(s Summary, unit string) string {
	if s.N <= 1 {
		return Number(s.Median) + " " + unit
	}
	return fmt.Sprintf("%s %s (%s–%s)", Number(s.Median), unit, Number(s.Min), Number(s.Max))
}

// Number formats v with three significant digits (thousands grouped).
func Number(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1000:
		return group(fmt.Sprintf("%.0f", v))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func group(digits string) string {
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// FormatRatio writes a ratio summary as "median [min, max]".
func FormatRatio(s Summary) string {
	return fmt.Sprintf("%s [%s, %s]", Number(s.Median), Number(s.Min), Number(s.Max))
}

// WriteTable writes rows as a Markdown table: measure | healthgw | peer |
// ratio. A row's note follows its peer description in parentheses; a row
// without a ratio shows "—" (or its note when it has no figures, as a
// skipped pair).
func WriteTable(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| measure | healthgw | peer on the same work | ratio healthgw/peer, median of interleaved rounds [min, max] |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, r := range rows {
		peer := r.Peer
		if r.Note != "" {
			if peer != "" {
				peer += " "
			}
			peer += "(" + r.Note + ")"
		}
		ratio := "—"
		if r.Ratio != nil {
			ratio = FormatRatio(*r.Ratio)
			if r.Ratio.N > 0 {
				ratio += fmt.Sprintf(", %d rounds", r.Ratio.N)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.Measure), cell(r.Healthgw), cell(peer), ratio)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps a value from breaking the table.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
