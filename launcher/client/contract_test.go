package client_test

import (
	"testing"

	"github.com/qlaunch/qlaunch/kernels"
	"github.com/qlaunch/qlaunch/kernels/futures/futurestest"
	"github.com/qlaunch/qlaunch/launcher/launchertest"
)

// TestFuturesContract runs the futures contract against the client of a
// real runtime (a server and a worker rank on loopback).
func TestFuturesContract(t *testing.T) {
	futurestest.Run(t, func(t *testing.T, ks []kernels.Kernel) futurestest.Runtime {
		tr := launchertest.Start(t, launchertest.Shape{Workers: []int{2}}, launchertest.Options{Kernels: ks})
		return tr.Client()
	})
}
