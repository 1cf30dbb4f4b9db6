package python

import "syscall"

// procAttr makes an executor die with its worker rank, even one killed -9
// (whose pipes would otherwise close only when a running task returns).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
