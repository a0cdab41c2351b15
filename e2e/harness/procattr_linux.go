package harness

import "syscall"

// ChildAttr makes the kernel kill a child process (Envoy, an upstream, a
// registry) when the test binary dies without cleaning up, such as on a
// -timeout panic.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// ScriptAttr is ChildAttr for a script that stops its own children: it gets
// SIGTERM, so its cleanup runs.
func ScriptAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
