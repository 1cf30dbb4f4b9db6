//go:build !linux

package rank

import (
	"errors"
	"fmt"
)

// Pin is supported on Linux only; elsewhere it fails unless cpus is empty.
func Pin(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	return fmt.Errorf("pin to CPUs %v: %w", cpus, errors.ErrUnsupported)
}

// Affinity is supported on Linux only.
func Affinity() ([]int, error) { return nil, fmt.Errorf("affinity: %w", errors.ErrUnsupported) }
