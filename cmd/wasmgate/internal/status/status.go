// Package status reads a running gateway's Envoy admin interface and says
// whether the plugin's policy is live and doing anything: configurations the
// plugin refused, routes never matched, limits that never fired, requests
// Envoy answered 503 for want of the hinted cluster, and the observed split
// beside the configured one.
package status

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/policy"
)

// Stats are the counters of an admin interface's /stats, by name.
type Stats map[string]uint64

// Fetch reads /stats from the admin interface at addr ("host:port").
func Fetch(addr string) (Stats, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/stats?filter=" + url.QueryEscape(`(wasmgate\.|\.no_cluster$)`))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin /stats: %s: %s", resp.Status, body)
	}
	return ParseStats(string(body)), nil
}

// ParseStats reads the admin's text format ("name: value" lines), keeping
// the plugin's counters by their names after "wasmgate." and Envoy's
// no_cluster counters by their full names.
func ParseStats(text string) Stats {
	s := Stats{}
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if !ok || err != nil {
			continue
		}
		if _, plugin, found := strings.Cut(name, policy.MetricPrefix); found {
			s[plugin] += n
		} else if strings.HasSuffix(name, ".no_cluster") {
			s[name] += n
		}
	}
	return s
}

// nonMetric are the characters the plugin replaces in a metric name's
// segment.
var nonMetric = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Finding is one line of the report; Problem marks those that need a look.
type Finding struct {
	Problem bool
	Text    string
}

// Check compares the stats with the policy (JSON) the gateway should run.
func Check(s Stats, policyJSON []byte) ([]Finding, error) {
	pol, err := policy.Parse(policyJSON)
	if err != nil {
		return nil, err
	}
	var out []Finding
	add := func(problem bool, format string, args ...any) {
		out = append(out, Finding{problem, fmt.Sprintf(format, args...)})
	}
	if n := s["config_rejected"]; n > 0 {
		add(true, "the plugin refused %d configurations (wasmgate.config_rejected): the gateway runs an older policy, or none", n)
	}
	live := 0
	for _, r := range pol.Routes() {
		if _, ok := s["route."+r.Name+".matched"]; ok {
			live++
		}
	}
	if live == 0 {
		add(true, "no counter of this policy's routes exists: the gateway does not run this policy")
		return out, nil
	}
	for _, r := range pol.Routes() {
		prefix := "route." + r.Name + "."
		matched := s[prefix+"matched"]
		if matched == 0 {
			add(true, "%s: never matched", r.Name)
			continue
		}
		line := fmt.Sprintf("%s: %d matched", r.Name, matched)
		if r.RateLimit != nil {
			limited, shadow := s[prefix+"rate_limited"], s[prefix+"shadow_limited"]
			line += fmt.Sprintf(", %d limited, %d over a shadow limit", limited, shadow)
			if limited+shadow == 0 {
				add(false, "%s", line)
				add(true, "%s: its rateLimit never fired", r.Name)
				line = ""
			}
		}
		if r.GlobalLimit != nil {
			line += fmt.Sprintf(", global: %d ok, %d over, %d errors, %d timeouts",
				s[prefix+"global_ok"], s[prefix+"global_over_limit"], s[prefix+"global_error"], s[prefix+"global_timeout"])
		}
		if line != "" {
			add(false, "%s", line)
		}
		if sp := r.Split; sp != nil {
			picked := func(d policy.Destination) uint64 {
				return s[prefix+"destination."+nonMetric.ReplaceAllString(d.Hint, "_")+".picked"]
			}
			var total uint64
			for _, d := range sp.Destinations {
				total += picked(d)
			}
			var parts []string
			for _, d := range sp.Destinations {
				n := picked(d)
				share := 0.0
				if total > 0 {
					share = 100 * float64(n) / float64(total)
				}
				parts = append(parts, fmt.Sprintf("%s %.1f%% (configured %d)", d.Hint, share, d.Weight))
			}
			add(false, "%s: split %s over %d picks", r.Name, strings.Join(parts, ", "), total)
		}
	}
	var nc []string
	for name, n := range s {
		if strings.HasSuffix(name, ".no_cluster") && n > 0 {
			nc = append(nc, fmt.Sprintf("%s %d", name, n))
		}
	}
	slices.Sort(nc)
	for _, l := range nc {
		add(true, "503 NC (no cluster for the hinted destination): %s", l)
	}
	return out, nil
}
