package web

import (
	"strconv"
	"time"

	"github.com/healthgw/healthgw/consent"
)

// chart is a server-rendered SVG bar chart of decisions per day: permits
// and denials stacked, in a fixed viewBox that scales to the page.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
	Total         int
	Permits       int
	Denials       int
	From, Until   string
	YLabels       []yLabel
}

type bar struct {
	X, W                 int
	PermitY, PermitH     int
	DenyY, DenyH         int
	Label                string // accessible title: date and counts
	Tick                 string // x-axis label (every seventh day)
	Permits, Denials, BG int
}

type yLabel struct {
	Y    int
	Text string
}

const (
	chartDays   = 30
	chartWidth  = 600
	chartHeight = 200
	chartLeft   = 30
	chartBottom = 20
)

// dailyChart counts events per UTC day over the chartDays days up to now.
func (t text) dailyChart(events []consent.AccessEvent, now time.Time) chart {
	end := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	start := end.Add(-chartDays * 24 * time.Hour)
	c := chart{Width: chartWidth, Height: chartHeight, From: t.Date(start), Until: t.Date(end.Add(-time.Second))}
	type day struct{ p, d, bg int }
	days := make([]day, chartDays)
	for _, e := range events {
		if e.Time.Before(start) || !e.Time.Before(end) {
			continue
		}
		i := int(e.Time.Sub(start) / (24 * time.Hour))
		if e.Decision == consent.Permit {
			days[i].p++
			c.Permits++
		} else {
			days[i].d++
			c.Denials++
		}
		if e.BreakGlass {
			days[i].bg++
		}
	}
	c.Total = c.Permits + c.Denials
	for _, d := range days {
		c.Max = max(c.Max, d.p+d.d)
	}
	scale := max(c.Max, 1)
	plotH := chartHeight - chartBottom - 10
	slot := (chartWidth - chartLeft) / chartDays
	for i, d := range days {
		ph := d.p * plotH / scale
		dh := d.d * plotH / scale
		if d.p > 0 && ph == 0 {
			ph = 1
		}
		if d.d > 0 && dh == 0 {
			dh = 1
		}
		base := chartHeight - chartBottom
		b := bar{X: chartLeft + i*slot + 2, W: slot - 4, PermitY: base - ph, PermitH: ph, DenyY: base - ph - dh, DenyH: dh,
			Permits: d.p, Denials: d.d, BG: d.bg}
		day := start.Add(time.Duration(i) * 24 * time.Hour)
		b.Label = t.T("ChartBar", "Date", t.Date(day), "Permits", d.p, "Denials", d.d)
		if i%7 == 0 {
			b.Tick = day.Format("01-02")
		}
		c.Bars = append(c.Bars, b)
	}
	for _, v := range []int{0, scale / 2, scale} {
		if v == scale/2 && (scale < 2 || scale%2 != 0) {
			continue
		}
		c.YLabels = append(c.YLabels, yLabel{Y: chartHeight - chartBottom - v*plotH/scale, Text: strconv.Itoa(v)})
	}
	return c
}

// chartView is what the "chart" template draws.
type chartView struct {
	ID, Title, Desc, Permit, Deny, Range string
	C                                    chart
}

// ChartView labels c for the template; id must be unique on the page.
func (t text) ChartView(id, title string, c chart) chartView {
	return chartView{ID: id, Title: title, C: c,
		Desc:   t.T("ChartDesc", "Total", c.Total, "Permits", c.Permits, "Denials", c.Denials, "From", c.From, "Until", c.Until),
		Permit: t.T("DecisionPermit"), Deny: t.T("DecisionDeny"), Range: t.T("ChartRange", "From", c.From, "Until", c.Until)}
}
