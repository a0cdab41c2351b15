package simulate

import (
	"fmt"
	"io"
	"slices"
)

// Diff counts what changes between two runs over the same requests.
type Diff struct {
	Requests int `json:"requests"`
	// Route, Destination, Rewrite and Headers count requests whose matched
	// route, destination hint, upstream path or authority, or request or
	// response header edits differ (the last two among requests both
	// policies forward).
	Route       int `json:"route"`
	Destination int `json:"destination"`
	Rewrite     int `json:"rewrite"`
	Headers     int `json:"headers"`
	// NewlyLimited and NoLongerLimited count requests the new policy denies
	// and the old did not, and the reverse.
	NewlyLimited    int `json:"newlyLimited"`
	NoLongerLimited int `json:"noLongerLimited"`
	// Changed counts requests with any difference; Examples are the first
	// few of them.
	Changed  int          `json:"changed"`
	Examples []DiffedPair `json:"examples,omitempty"`
}

// DiffedPair is one request's results under both policies.
type DiffedPair struct {
	Old Result `json:"old"`
	New Result `json:"new"`
}

// maxExamples bounds Diff.Examples.
const maxExamples = 10

// Compare diffs two runs over the same requests (same length, same order).
func Compare(old, new []Result) Diff {
	d := Diff{Requests: len(old)}
	for i := range old {
		o, n := &old[i], &new[i]
		changed := false
		count := func(differs bool, counter *int) {
			if differs {
				*counter++
				changed = true
			}
		}
		count(o.Route != n.Route, &d.Route)
		count(o.Destination != n.Destination, &d.Destination)
		count(o.Forwarded && n.Forwarded && (o.UpstreamPath != n.UpstreamPath || o.UpstreamAuthority != n.UpstreamAuthority), &d.Rewrite)
		count(o.Forwarded && n.Forwarded && (!slices.Equal(o.RequestSet, n.RequestSet) ||
			!slices.Equal(o.RequestRemoved, n.RequestRemoved) || !slices.Equal(o.ResponseSet, n.ResponseSet)), &d.Headers)
		count(!o.Limited() && n.Limited(), &d.NewlyLimited)
		count(o.Limited() && !n.Limited(), &d.NoLongerLimited)
		if changed {
			d.Changed++
			if len(d.Examples) < maxExamples {
				d.Examples = append(d.Examples, DiffedPair{Old: *o, New: *n})
			}
		}
	}
	return d
}

// WriteText prints the counts in a sentence each, then the examples.
func (d *Diff) WriteText(w io.Writer) error {
	if d.Changed == 0 {
		_, err := fmt.Fprintf(w, "no change: all %d requests get the same verdicts\n", d.Requests)
		return err
	}
	fmt.Fprintf(w, "%d of %d requests change:\n", d.Changed, d.Requests)
	for _, line := range []struct {
		n    int
		what string
	}{
		{d.Route, "match another route"},
		{d.Destination, "change destination"},
		{d.NewlyLimited, "more are limited"},
		{d.NoLongerLimited, "fewer are limited"},
		{d.Rewrite, "rewrites differ"},
		{d.Headers, "header edits differ"},
	} {
		if line.n > 0 {
			fmt.Fprintf(w, "  %6d %s\n", line.n, line.what)
		}
	}
	if len(d.Examples) > 0 {
		fmt.Fprintf(w, "\nfirst %d:\n", len(d.Examples))
	}
	for _, e := range d.Examples {
		fmt.Fprintf(w, "  %s %s %s\n    old: %s\n    new: %s\n", e.Old.Source, e.Old.Method, e.Old.Path, verdict(&e.Old), verdict(&e.New))
	}
	return nil
}

// verdict is a one-line summary of a result.
func verdict(r *Result) string {
	s := describeRoute(r.Route)
	if r.Forwarded {
		s += ", upstream " + r.UpstreamAuthority + r.UpstreamPath
	} else {
		s += fmt.Sprintf(", answered %d", r.Status)
	}
	if r.Destination != "" {
		s += ", destination " + r.Destination
	}
	if r.Limit != nil {
		s += ", " + r.Limit.Verdict
	}
	if edits := describeEdits(r.RequestSet, r.RequestRemoved); edits != "" && r.Forwarded {
		s += ", request " + edits
	}
	return s
}
