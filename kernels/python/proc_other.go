//go:build !linux

package python

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
