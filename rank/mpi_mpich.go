//go:build mpi && cgo && mpich

package rank

// #cgo pkg-config: mpich
import "C"
