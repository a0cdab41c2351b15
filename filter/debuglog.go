package filter

import (
	"strconv"

	"github.com/wasmgate/wasmgate/policy"
)

// logRequest logs one line per request at debug level, for a policy with
// "logRequests": the route, and what the plan did with the request.
// Unmatched requests log "route=-". Envoy prints it when the plugin's log
// level is debug (the wasm logger, or ?wasm=debug on the admin port's
// /logging).
//
// # Notes
//
// The ABI version the SDKs declare gives the plugin no way to ask the
// proxy's log level, so the line is opted into by the policy: a policy
// without "logRequests" pays nothing for it.
func logRequest(req *policy.Request, plan *policy.Plan) {
	if plan.Route == nil {
		logDebug("wasmgate: request " + strconv.Quote(req.Path) + " route=-")
		return
	}
	line := "wasmgate: request " + strconv.Quote(req.Path) + " route=" + plan.Route.Name
	if plan.Path != "" {
		line += " path=" + strconv.Quote(plan.Path)
	}
	if plan.Authority != "" {
		line += " authority=" + strconv.Quote(plan.Authority)
	}
	if d := plan.Destination; d != nil {
		line += " destination=" + strconv.Quote(d.Hint)
		if plan.Overridden {
			line += " (override)"
		}
	}
	if plan.Route.RateLimit != nil {
		switch v := plan.Limit; {
		case plan.Reply != nil:
			line += " limit=denied retry_after_ns=" + strconv.FormatInt(int64(v.Result.RetryAfter), 10)
		case v.Err != nil:
			line += " limit=error(" + v.Err.Error() + ")"
		case !v.Checked:
			line += " limit=shadow-denied"
		default:
			line += " limit=allowed remaining=" + strconv.FormatUint(v.Result.Remaining, 10)
		}
	}
	logDebug(line)
}
