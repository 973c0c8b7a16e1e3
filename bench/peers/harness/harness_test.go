package harness

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Summary
	}{
		{"one", []float64{2.5}, Summary{2.5, 2.5, 2.5, 1}},
		{"odd", []float64{3, 1, 2}, Summary{2, 1, 3, 3}},
		{"even", []float64{4, 1, 3, 2}, Summary{2.5, 1, 4, 4}},
		{"duplicates", []float64{1, 1, 5}, Summary{1, 1, 5, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			got, err := Summarize(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Summarize(%v) (-want +got):\n%s", tc.in, diff)
			}
			if diff := cmp.Diff(in, tc.in); diff != "" {
				t.Errorf("Summarize changed its input:\n%s", diff)
			}
		})
	}
	if _, err := Summarize(nil); !errors.Is(err, ErrNoSamples) {
		t.Errorf("Summarize(nil) = %v, want ErrNoSamples", err)
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := Summarize([]float64{1, bad}); err == nil {
			t.Errorf("Summarize with %v: no error", bad)
		}
	}
}

func TestRatios(t *testing.T) {
	got, err := Ratios([]float64{10, 30, 5}, []float64{5, 10, 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{2, 3, 0.5}, got); diff != "" {
		t.Errorf("Ratios (-want +got):\n%s", diff)
	}
	if _, err := Ratios([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("Ratios of unequal lengths: no error")
	}
	if _, err := Ratios([]float64{1}, []float64{0}); err == nil {
		t.Error("Ratios over a zero rate: no error")
	}
}

func TestInterleave(t *testing.T) {
	var order []string
	h := func(round int) (float64, error) { order = append(order, "h"); return float64(10 + round), nil }
	p := func(round int) (float64, error) { order = append(order, "p"); return float64(round + 1), nil }
	got, err := Interleave(4, h, p)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Healthgw: []float64{10, 11, 12, 13}, Peer: []float64{1, 2, 3, 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Interleave (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(strings.Split("h p p h h p p h", " "), order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	boom := errors.New("boom")
	_, err = Interleave(3, h, func(round int) (float64, error) {
		if round == 1 {
			return 0, boom
		}
		return 1, nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "round 1") {
		t.Errorf("Interleave with a failing round = %v, want boom in round 1", err)
	}
	if _, err := Interleave(0, h, p); err == nil {
		t.Error("Interleave(0): no error")
	}
}

func TestRowOf(t *testing.T) {
	r := Result{Healthgw: []float64{2000, 3000, 1000}, Peer: []float64{1000, 1000, 1000}}
	got, err := RowOf("appends", "Tessera", "entries/s", r)
	if err != nil {
		t.Fatal(err)
	}
	want := Row{
		Measure:  "appends",
		Healthgw: "2,000 entries/s (1,000–3,000)",
		Peer:     "Tessera 1,000 entries/s (1,000–1,000)",
		Ratio:    &Summary{Median: 2, Min: 1, Max: 3, N: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RowOf (-want +got):\n%s", diff)
	}
	if _, err := RowOf("x", "y", "z", Result{Healthgw: []float64{1}, Peer: []float64{0}}); err == nil {
		t.Error("RowOf over a zero peer rate: no error")
	}
}

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.01234, "0.0123"}, {1.234, "1.23"}, {12.34, "12.3"}, {123.4, "123"},
		{1234.5, "1,234"}, {21587, "21,587"}, {1234567, "1,234,567"}, {-4321, "-4,321"},
	} {
		if got := Number(tc.in); got != tc.want {
			t.Errorf("Number(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	err := WriteTable(&b, []Row{
		{Measure: "appends, 1 appender", Healthgw: "1,500 entries/s", Peer: "Tessera 200 entries/s", Ratio: &Summary{7.5, 6.1, 15, 5}},
		{Measure: "ZK prove", Healthgw: "a|b", Note: "skipped: node absent"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "| measure | healthgw | peer on the same work | ratio healthgw/peer, median of interleaved rounds [min, max] |\n" +
		"|---|---|---|---|\n" +
		"| appends, 1 appender | 1,500 entries/s | Tessera 200 entries/s | 7.50 [6.10, 15.0], 5 rounds |\n" +
		"| ZK prove | a\\|b | (skipped: node absent) | — |\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteTable (-want +got):\n%s", diff)
	}
}
