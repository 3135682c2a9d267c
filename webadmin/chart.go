package webadmin

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// chart draws a small line chart of a series over the last window as SVG,
// server-side (no script), with presentation attributes only (the CSP
// allows no inline style).
func chart(title, unit string, points []metricPoint, now time.Time, window time.Duration) template.HTML {
	const w, h, left, bottom = 480.0, 140.0, 48.0, 20.0
	maxV := 0.0
	for _, p := range points {
		maxV = max(maxV, p.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	start := now.Add(-window)
	x := func(t time.Time) float64 {
		return left + (w-left-8)*float64(t.Sub(start))/float64(window)
	}
	y := func(v float64) float64 { return 8 + (h-bottom-8)*(1-v/maxV) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="8" x2="%.0f" y2="%.0f" stroke="#999" stroke-width="1"/>`, left, left, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#999" stroke-width="1"/>`, left, h-bottom, w-8, h-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="14" font-size="11" text-anchor="end" fill="#444">%s</text>`, left-4, fmtValue(maxV, unit))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#444">0</text>`, left-4, h-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#444">-%s</text>`, left, h-4, window)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#444">now</text>`, w-8, h-4)
	var pts []string
	for _, p := range points {
		if p.Time.Before(start) {
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Time), y(p.Value)))
	}
	switch len(pts) {
	case 0:
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="12" text-anchor="middle" fill="#666">no samples yet</text>`, (w+left)/2, h/2)
	case 1:
		fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="#1f5fa8"/>`, strings.Split(pts[0], ",")[0], strings.Split(pts[0], ",")[1])
	default:
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#1f5fa8" stroke-width="2"/>`, strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func fmtValue(v float64, unit string) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d%s", int64(v), unit)
	}
	return fmt.Sprintf("%.2g%s", v, unit)
}
