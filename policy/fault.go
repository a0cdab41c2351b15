package policy

import (
	"math/bits"
	"strconv"

	"github.com/tidwall/gjson"
)

// FaultAbortDetails is the response code detail of a fault abort.
const FaultAbortDetails = "wasmgate_fault_abort"

// faultAbortBody is the body of an aborted request, as Envoy's fault filter
// writes it.
const faultAbortBody = "fault filter abort"

// perMillion is the denominator of a compiled percentage: Istio hands
// percentages to Envoy as parts per million.
const perMillion = 1_000_000

var (
	schemaPercentage = &Schema{Kind: KindObject, Doc: "Istio's Percent: a share of requests.",
		Fields: []*Field{
			required("value", &Schema{Kind: KindNumber, Min: 0, Max: 100,
				Doc: "A percentage from 0 to 100, fractions allowed (0, or at least 0.0001)."}),
		}}

	schemaFaultAbort = &Schema{Kind: KindObject, Doc: "Answer a share of the requests with an error status instead of forwarding them.",
		Fields: []*Field{
			// Required: Istio hands an abort without one to Envoy as 0 %,
			// which aborts nothing, a default nobody means.
			required("percentage", schemaPercentage),
			required("httpStatus", intDecl("The status of an aborted request.", 200, 599)),
		}}

	schemaFaultDelay = &Schema{Kind: KindObject, Doc: "Delay a share of the requests before forwarding them (done by the route table; the plugin ignores it).",
		Fields: []*Field{
			optional("percentage", schemaPercentage),
			required("fixedDelay", durationDecl("How long to delay.")),
		}}

	schemaFault = &Schema{Kind: KindObject, Def: "fault", MinFields: 1,
		Doc: "Fault injection, as Istio's HTTPFaultInjection.",
		Fields: []*Field{
			optional("abort", schemaFaultAbort),
			optional("delay", schemaFaultDelay),
		}}
)

func init() {
	register(&feature{order: 52, fields: []*Field{optional("fault", schemaFault)}, compile: compileFault})
}

// faultAbort is a compiled "fault.abort".
type faultAbort struct {
	ppm    uint64 // aborted requests per million
	status uint32
}

// compileFault compiles the "fault" block; only "abort" acts in the
// plugin, "delay" goes to Route.Table.
func compileFault(p *parser, route *object, r *Route) unit {
	fv, ok := route.value("fault")
	if !ok {
		return nil
	}
	o, ok := p.object(route.at("fault"), fv, schemaFault)
	if !ok || !o.minFields() {
		return nil
	}
	if dv, ok := o.value("delay"); ok {
		p.faultDelay(o.at("delay"), dv, r)
	}
	av, ok := o.value("abort")
	if !ok {
		return nil
	}
	a, ok := p.faultAbort(o.at("abort"), av)
	if !ok {
		return nil
	}
	return &abortUnit{a: a}
}

func (p *parser) faultAbort(path string, v gjson.Result) (faultAbort, bool) {
	var a faultAbort
	o, ok := p.object(path, v, schemaFaultAbort)
	if !ok {
		return a, false
	}
	before := len(p.errs)
	if pv, ok := o.value("percentage"); ok {
		a.ppm, _ = p.percentage(o.at("percentage"), pv)
	}
	if n, ok := o.integer("httpStatus"); ok {
		a.status = uint32(n)
	}
	return a, len(p.errs) == before
}

// faultDelay compiles "fault.delay" into r's Table.
func (p *parser) faultDelay(path string, v gjson.Result, r *Route) {
	o, ok := p.object(path, v, schemaFaultDelay)
	if !ok {
		return
	}
	d := &Delay{PerMillion: perMillion}
	before := len(p.errs)
	if pv, ok := o.value("percentage"); ok {
		d.PerMillion, _ = p.percentage(o.at("percentage"), pv)
	}
	if fv, ok := o.value("fixedDelay"); ok {
		d.FixedDelay, _ = p.duration(o.at("fixedDelay"), fv)
	}
	if len(p.errs) == before {
		table(r).Delay = d
	}
}

// percentage reads an Istio Percent into parts per million, as Istio
// translates it for Envoy (value × 10000, truncated).
func (p *parser) percentage(path string, v gjson.Result) (uint64, bool) {
	o, ok := p.object(path, v, schemaPercentage)
	if !ok {
		return 0, false
	}
	vv, ok := o.value("value")
	if !ok {
		return 0, false
	}
	f, ok := p.number(o.at("value"), vv, 0, 100)
	if !ok {
		return 0, false
	}
	if f > 0 && f < 0.0001 {
		p.fail(o.at("value"), "must be 0 or at least 0.0001, got %s", vv.Raw)
		return 0, false
	}
	return uint64(f * 10000), true
}

// chosen reports whether a request whose random number is random falls in
// the share ppm of parts per million.
func chosen(random, ppm uint64) bool {
	point, _ := bits.Mul64(random, perMillion) // uniform over [0, 1e6)
	return point < ppm
}

type abortUnit struct {
	noUnit
	a       faultAbort
	aborted Counter
}

func (u *abortUnit) counters(def func(string) Counter) { u.aborted = def(CounterFaultAborted) }

func (u *abortUnit) step(plan *Plan, _ *Request, env Env) bool {
	if !chosen(env.Random(), u.a.ppm) {
		return true
	}
	plan.Counters = append(plan.Counters, u.aborted)
	plan.answer(u.a.status, FaultAbortDetails, plan.reply.Headers[:0], faultAbortBody)
	return false
}

func (u *abortUnit) describe(line string, plan *Plan) string {
	if plan.Reply != nil && plan.Reply.Details == FaultAbortDetails {
		line += " fault=abort(" + strconv.FormatUint(uint64(u.a.status), 10) + ")"
	}
	return line
}
