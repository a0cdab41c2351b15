//go:build wasm

package filter

import (
	"strconv"
	"unsafe"
)

// The metric calls of the modules, declared here instead of through the
// SDKs' wrappers: those panic on a failed call (a panic kills the VM) and
// format the panic with fmt, which was the TinyGo module's largest
// dependency after regexp (docs/BENCHMARKS.md, "Module size").

// metricCounter is the id of a counter the proxy defined; 0 is none.
type metricCounter uint32

const metricTypeCounter = 0

// defineCounterMetric defines a counter; a failure is logged and leaves the
// counter undefined (its increments go nowhere).
func defineCounterMetric(name string) metricCounter {
	var id uint32
	if st := proxyDefineMetric(metricTypeCounter, unsafe.StringData(name), int32(len(name)), &id); st != 0 {
		logCritical("defining metric " + name + ": proxy_define_metric status " + strconv.FormatUint(uint64(st), 10))
		return 0
	}
	return metricCounter(id)
}

// Increment adds n to the counter. A failed call loses the count, which is
// not worth a dead VM.
func (m metricCounter) Increment(n uint64) {
	if m != 0 {
		proxyIncrementMetric(uint32(m), int64(n))
	}
}

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name *byte, nameSize int32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32
