package simulate

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// NoRoute names the requests no route matched in summaries.
const NoRoute = "(no route)"

// RouteSummary counts what happened to the requests of one route.
type RouteSummary struct {
	Route   string `json:"route"`
	Matched int    `json:"matched"`
	// Destinations counts the requests sent to each destination hint.
	Destinations []DestinationCount `json:"destinations,omitempty"`
	Limited      int                `json:"limited"`
	// ShadowLimited counts requests over a shadow limit (let through).
	ShadowLimited int `json:"shadowLimited,omitempty"`
}

// DestinationCount is one destination's share of a route's requests.
type DestinationCount struct {
	Destination string  `json:"destination"`
	Requests    int     `json:"requests"`
	Share       float64 `json:"share"` // of the route's forwarded requests with a destination
}

// Summarize counts results per route, routes in order of first appearance,
// NoRoute last.
func Summarize(results []Result) []RouteSummary {
	var out []RouteSummary
	index := map[string]int{}
	for _, r := range results {
		name := r.Route
		if name == "" {
			name = NoRoute
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, RouteSummary{Route: name})
		}
		s := &out[i]
		s.Matched++
		if r.Limited() {
			s.Limited++
		} else if r.Limit != nil && r.Limit.Verdict == "shadow-limited" {
			s.ShadowLimited++
		}
		if r.Destination != "" && r.Forwarded {
			j := slices.IndexFunc(s.Destinations, func(d DestinationCount) bool { return d.Destination == r.Destination })
			if j < 0 {
				j = len(s.Destinations)
				s.Destinations = append(s.Destinations, DestinationCount{Destination: r.Destination})
			}
			s.Destinations[j].Requests++
		}
	}
	for i := range out {
		total := 0
		for _, d := range out[i].Destinations {
			total += d.Requests
		}
		for j := range out[i].Destinations {
			out[i].Destinations[j].Share = float64(out[i].Destinations[j].Requests) / float64(total)
		}
	}
	if i, ok := index[NoRoute]; ok && i != len(out)-1 {
		none := out[i]
		out = append(slices.Delete(out, i, i+1), none)
	}
	return out
}

// WriteText prints one block per request, then the summary.
func WriteText(w io.Writer, results []Result) error {
	for i, r := range results {
		fmt.Fprintf(w, "#%d %s %s %s (at %s, %s)\n", i+1, r.Method, r.Path, describeRoute(r.Route), r.At, r.Source)
		if p := r.Proxy; p.Path != "" || p.Authority != "" {
			var parts []string
			if p.Authority != "" {
				parts = append(parts, "authority "+p.Authority)
			}
			if p.Path != "" {
				parts = append(parts, "path "+p.Path)
			}
			fmt.Fprintf(w, "   envoy      passed %s\n", strings.Join(parts, ", "))
		}
		switch {
		case r.Proxy.Rejected:
			fmt.Fprintf(w, "   refused by Envoy: %d %s\n", r.Status, r.Details)
		case r.Forwarded:
			fmt.Fprintf(w, "   upstream   %s %s", r.UpstreamAuthority, r.UpstreamPath)
			if r.Destination != "" {
				fmt.Fprintf(w, " → destination %s", r.Destination)
			}
			fmt.Fprintln(w)
		default:
			fmt.Fprintf(w, "   answered by the plugin: %d %s\n", r.Status, r.Details)
		}
		if r.Forwarded && (len(r.RequestSet) > 0 || len(r.RequestRemoved) > 0) {
			fmt.Fprintf(w, "   request    %s\n", describeEdits(r.RequestSet, r.RequestRemoved))
		}
		if r.Limit != nil {
			fmt.Fprintf(w, "   limit      %s", r.Limit.Verdict)
			if r.Limit.Remaining != nil {
				fmt.Fprintf(w, ", %d left", *r.Limit.Remaining)
			}
			fmt.Fprintln(w)
		}
		if len(r.ResponseSet) > 0 {
			fmt.Fprintf(w, "   response   %d %s\n", r.Status, describeEdits(r.ResponseSet, nil))
		}
	}
	fmt.Fprintf(w, "\n%d requests\n", len(results))
	return WriteSummary(w, Summarize(results))
}

// WriteSummary prints one line per route.
func WriteSummary(w io.Writer, sums []RouteSummary) error {
	for _, s := range sums {
		line := fmt.Sprintf("%-20s %6d matched", s.Route, s.Matched)
		if s.Limited > 0 {
			line += fmt.Sprintf(", %d limited", s.Limited)
		}
		if s.ShadowLimited > 0 {
			line += fmt.Sprintf(", %d over a shadow limit", s.ShadowLimited)
		}
		var shares []string
		for _, d := range s.Destinations {
			shares = append(shares, fmt.Sprintf("%s %.1f%%", d.Destination, 100*d.Share))
		}
		if len(shares) > 0 {
			line += " → " + strings.Join(shares, ", ")
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func describeRoute(route string) string {
	if route == "" {
		return "→ no route"
	}
	return "→ route " + route
}

func describeEdits(set [][2]string, removed []string) string {
	var parts []string
	for _, h := range set {
		parts = append(parts, fmt.Sprintf("%s: %s", h[0], h[1]))
	}
	for _, name := range removed {
		parts = append(parts, "-"+name)
	}
	return strings.Join(parts, "; ")
}
