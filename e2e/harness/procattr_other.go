//go:build !linux

package harness

import "syscall"

// ChildAttr is empty where the kernel cannot tie a child's life to ours.
func ChildAttr() *syscall.SysProcAttr { return nil }

// ScriptAttr is empty where the kernel cannot tie a child's life to ours.
func ScriptAttr() *syscall.SysProcAttr { return nil }
