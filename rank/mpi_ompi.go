//go:build mpi && cgo && !mpich

package rank

// #cgo pkg-config: ompi-c
import "C"
