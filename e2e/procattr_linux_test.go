package e2e

import "syscall"

// childAttr makes the kernel kill a child process (Envoy, an upstream) when
// the test binary dies without cleaning up, such as on a -timeout panic.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// scriptAttr is childAttr for a script that stops its own children: it gets
// SIGTERM, so its cleanup runs.
func scriptAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
