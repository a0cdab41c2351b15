//go:build !linux

package e2e

import "syscall"

// childAttr is empty where the kernel cannot tie a child's life to ours.
func childAttr() *syscall.SysProcAttr { return nil }

// scriptAttr is empty where the kernel cannot tie a child's life to ours.
func scriptAttr() *syscall.SysProcAttr { return nil }
