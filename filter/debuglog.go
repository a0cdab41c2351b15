package filter

import (
	"github.com/wasmgate/wasmgate/policy"
)

// logRequest logs one line per request at debug level, for a policy with
// "logRequests": the route, and what the plan did with the request
// (Plan.Describe). Envoy prints it when the plugin's log level is debug
// (the wasm logger, or ?wasm=debug on the admin port's /logging).
//
// # Notes
//
// The ABI version the SDKs declare gives the plugin no way to ask the
// proxy's log level, so the line is opted into by the policy: a policy
// without "logRequests" pays nothing for it.
func logRequest(req *policy.Request, plan *policy.Plan) {
	logDebug("wasmgate: " + plan.Describe(req))
}
