package proxyhost

import "strconv"

// Status is a proxy-wasm ABI status code, returned by every host function.
type Status uint32

// Status codes of proxy-wasm ABI 0.2.1.
const (
	StatusOK                  Status = 0
	StatusNotFound            Status = 1
	StatusBadArgument         Status = 2
	StatusSerializationFail   Status = 3
	StatusParseFailure        Status = 4
	StatusInvalidMemoryAccess Status = 6
	StatusEmpty               Status = 7
	StatusCasMismatch         Status = 8
	StatusInternalFailure     Status = 10
	StatusUnimplemented       Status = 12
)

var statusNames = map[Status]string{
	StatusOK:                  "OK",
	StatusNotFound:            "NOT_FOUND",
	StatusBadArgument:         "BAD_ARGUMENT",
	StatusSerializationFail:   "SERIALIZATION_FAILURE",
	StatusParseFailure:        "PARSE_FAILURE",
	StatusInvalidMemoryAccess: "INVALID_MEMORY_ACCESS",
	StatusEmpty:               "EMPTY",
	StatusCasMismatch:         "CAS_MISMATCH",
	StatusInternalFailure:     "INTERNAL_FAILURE",
	StatusUnimplemented:       "UNIMPLEMENTED",
}

// String returns the ABI name of the status, such as "CAS_MISMATCH".
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "Status(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Action is what a plugin's header callback asks the host to do next.
type Action uint32

// Actions returned by proxy_on_request_headers and proxy_on_response_headers.
const (
	// ActionContinue passes the headers on to the next filter.
	ActionContinue Action = 0
	// ActionPause stops iteration, as after a local response.
	ActionPause Action = 1
)

// String returns "continue", "pause" or the number.
func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "continue"
	case ActionPause:
		return "pause"
	}
	return "Action(" + strconv.FormatUint(uint64(a), 10) + ")"
}

// LogLevel is the level of a message logged by proxy_log.
type LogLevel uint32

// Log levels of proxy-wasm ABI 0.2.1.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
	numLogLevels
)

var logLevelNames = [numLogLevels]string{"trace", "debug", "info", "warn", "error", "critical"}

// String returns the lower-case level name, such as "critical".
func (l LogLevel) String() string {
	if l < numLogLevels {
		return logLevelNames[l]
	}
	return "LogLevel(" + strconv.FormatUint(uint64(l), 10) + ")"
}

// MetricType is the kind of metric defined by proxy_define_metric.
type MetricType uint32

// Metric types of proxy-wasm ABI 0.2.1.
const (
	MetricCounter MetricType = iota
	MetricGauge
	MetricHistogram
)

// String returns "counter", "gauge" or "histogram".
func (t MetricType) String() string {
	switch t {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return "MetricType(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Metric is a snapshot of one metric.
type Metric struct {
	Name string
	Type MetricType
	// Value is the counter or gauge value; for a histogram, the sum of the
	// recorded values.
	Value uint64
	// Samples is the number of values a histogram recorded; 0 for others.
	Samples uint64
}

// LocalResponse is a response the plugin sent with proxy_send_local_response
// instead of letting the request through.
type LocalResponse struct {
	StatusCode uint32
	// Details is the response code details Envoy logs (%RESPONSE_CODE_DETAILS%).
	Details string
	Body    []byte
	Headers Headers
	// GRPCStatus is -1 unless the plugin asked for a gRPC status.
	GRPCStatus int32
}

// ForeignCall records one proxy_call_foreign_function call.
type ForeignCall struct {
	Name   string
	Args   []byte
	Status Status
}

// ForeignFunc implements a foreign function the plugin can call by name.
// It returns the result bytes given back to the plugin and the call's status.
type ForeignFunc func(args []byte) ([]byte, Status)
