// Package wire is qlaunch's wire protocol: length-prefixed frames, optional
// compression (zstd or s2) above a size threshold, an HMAC challenge–response
// handshake that proves both ends know the job secret, and the encoding of
// every message kind.
//
// The protocol knows nothing about TCP: it runs over any io.ReadWriter, so
// tests use net.Pipe and fuzzers use byte slices.
package wire
