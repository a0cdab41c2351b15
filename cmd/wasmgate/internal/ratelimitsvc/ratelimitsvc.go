// Package ratelimitsvc emulates envoyproxy/ratelimit, Envoy's rate limit
// service, from the configuration file a user deploys to it: a domain,
// nested descriptors (key, optional value), each with an optional
// rate_limit (unit, requests_per_unit, unlimited, name, replaces) and
// shadow_mode. Counts are fixed windows aligned as the service aligns them:
// a hit at time t counts in the window floor(t / unit), so every window of a
// minute starts at a whole minute.
package ratelimitsvc

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"
)

// yamlDescriptor is one descriptors entry of the service's configuration.
type yamlDescriptor struct {
	Key         string           `yaml:"key"`
	Value       string           `yaml:"value"`
	RateLimit   *yamlRateLimit   `yaml:"rate_limit"`
	Descriptors []yamlDescriptor `yaml:"descriptors"`
	ShadowMode  bool             `yaml:"shadow_mode"`
	// DetailedMetric changes only the service's stats; it is accepted.
	DetailedMetric bool `yaml:"detailed_metric"`
}

type yamlRateLimit struct {
	Unit            string `yaml:"unit"`
	RequestsPerUnit uint32 `yaml:"requests_per_unit"`
	Unlimited       bool   `yaml:"unlimited"`
	Name            string `yaml:"name"`
	Replaces        []struct {
		Name string `yaml:"name"`
	} `yaml:"replaces"`
}

// limit is a compiled rate_limit.
type limit struct {
	unit      rlsv3.RateLimitResponse_RateLimit_Unit
	seconds   int64
	perUnit   uint32
	unlimited bool
	shadow    bool
	name      string
	replaces  []string
}

type node struct {
	limit    *limit
	children map[string]*node // by "key_value", or "key" for any value
}

// Service is the emulated service with its counters.
type Service struct {
	domain string
	root   map[string]*node
	counts map[string]uint64
}

var units = map[string]struct {
	unit    rlsv3.RateLimitResponse_RateLimit_Unit
	seconds int64
}{
	"second": {rlsv3.RateLimitResponse_RateLimit_SECOND, 1},
	"minute": {rlsv3.RateLimitResponse_RateLimit_MINUTE, 60},
	"hour":   {rlsv3.RateLimitResponse_RateLimit_HOUR, 3600},
	"day":    {rlsv3.RateLimitResponse_RateLimit_DAY, 86400},
	"week":   {rlsv3.RateLimitResponse_RateLimit_WEEK, 7 * 86400},
	"month":  {rlsv3.RateLimitResponse_RateLimit_MONTH, 30 * 86400},
	"year":   {rlsv3.RateLimitResponse_RateLimit_YEAR, 365 * 86400},
}

// Parse reads the service's configuration file (YAML), rejecting unknown
// keys as the service does.
//
// # Errors
//
// Errors name the descriptor's path: "descriptors[1].descriptors[0]
// .rate_limit.unit: ...".
func Parse(data []byte) (*Service, error) {
	var root struct {
		Domain      string           `yaml:"domain"`
		Descriptors []yamlDescriptor `yaml:"descriptors"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	if root.Domain == "" {
		return nil, errors.New("domain: must not be empty")
	}
	s := &Service{domain: root.Domain, counts: map[string]uint64{}}
	var err error
	s.root, err = compile("descriptors", root.Descriptors)
	return s, err
}

func compile(path string, ds []yamlDescriptor) (map[string]*node, error) {
	out := map[string]*node{}
	for i, d := range ds {
		where := fmt.Sprintf("%s[%d]", path, i)
		if d.Key == "" {
			return nil, fmt.Errorf("%s.key: must not be empty", where)
		}
		if strings.HasSuffix(d.Value, "*") {
			return nil, fmt.Errorf("%s.value: %q: wildcard values are not emulated", where, d.Value)
		}
		key := d.Key
		if d.Value != "" {
			key += "_" + d.Value
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s: duplicate descriptor %q", where, key)
		}
		n := &node{}
		if rl := d.RateLimit; rl != nil {
			u, ok := units[strings.ToLower(rl.Unit)]
			if !ok && !rl.Unlimited {
				return nil, fmt.Errorf("%s.rate_limit.unit: %q is not second, minute, hour, day, week, month or year", where, rl.Unit)
			}
			n.limit = &limit{unit: u.unit, seconds: u.seconds, perUnit: rl.RequestsPerUnit, unlimited: rl.Unlimited, shadow: d.ShadowMode, name: rl.Name}
			for j, r := range rl.Replaces {
				if r.Name == "" || r.Name == rl.Name {
					return nil, fmt.Errorf("%s.rate_limit.replaces[%d].name: must name another limit", where, j)
				}
				n.limit.replaces = append(n.limit.replaces, r.Name)
			}
		}
		var err error
		if n.children, err = compile(where+".descriptors", d.Descriptors); err != nil {
			return nil, err
		}
		out[key] = n
	}
	return out, nil
}

// find is the service's lookup: walk the entries, at each level the node
// "key_value", else "key"; the limit counts only when the last entry lands
// on a node with one.
func (s *Service) find(d *rlcommon.RateLimitDescriptor) *limit {
	level := s.root
	var found *limit
	for i, e := range d.Entries {
		n := level[e.Key+"_"+e.Value]
		if n == nil {
			n = level[e.Key]
		}
		if n != nil && n.limit != nil && i == len(d.Entries)-1 {
			found = n.limit
		}
		if n == nil || len(n.children) == 0 {
			break
		}
		level = n.children
	}
	return found
}

// ShouldRateLimit answers one request at time now, counting its hits.
func (s *Service) ShouldRateLimit(req *rlsv3.RateLimitRequest, now time.Time) *rlsv3.RateLimitResponse {
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	if req.Domain != s.domain {
		for range req.Descriptors {
			resp.Statuses = append(resp.Statuses, &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK})
		}
		return resp
	}
	limits := make([]*limit, len(req.Descriptors))
	replaced := map[string]bool{}
	for i, d := range req.Descriptors {
		limits[i] = s.find(d)
		if l := limits[i]; l != nil {
			for _, r := range l.replaces {
				replaced[r] = true
			}
		}
	}
	hits := uint64(req.HitsAddend)
	if hits == 0 {
		hits = 1
	}
	for i, d := range req.Descriptors {
		l := limits[i]
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		resp.Statuses = append(resp.Statuses, st)
		if l == nil || l.unlimited || (l.name != "" && replaced[l.name]) {
			continue
		}
		window := now.Unix() / l.seconds * l.seconds
		key := cacheKey(s.domain, d, window)
		s.counts[key] += hits
		n := s.counts[key]
		st.CurrentLimit = &rlsv3.RateLimitResponse_RateLimit{Name: l.name, RequestsPerUnit: l.perUnit, Unit: l.unit}
		st.DurationUntilReset = durationpb.New(time.Unix(window+l.seconds, 0).Sub(now).Truncate(time.Second))
		if n > uint64(l.perUnit) {
			if !l.shadow {
				st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
				resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			}
			continue
		}
		st.LimitRemaining = l.perUnit - uint32(n)
	}
	return resp
}

// cacheKey is the service's counter key: domain, entries, window start.
func cacheKey(domain string, d *rlcommon.RateLimitDescriptor, window int64) string {
	var b strings.Builder
	b.WriteString(domain)
	for _, e := range d.Entries {
		b.WriteString("_" + e.Key + "_" + e.Value)
	}
	fmt.Fprintf(&b, "_%d", window)
	return b.String()
}
