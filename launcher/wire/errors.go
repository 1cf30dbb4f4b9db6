package wire

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned carry more detail (sizes, kinds, versions) around them.
var (
	// ErrFrameTooLarge reports a frame whose length, or whose size once
	// decompressed, exceeds the connection's MaxFrame (or the handshake's
	// smaller limit). The connection must be closed.
	ErrFrameTooLarge = errors.New("wire: frame too large")

	// ErrBadFrame reports a malformed frame: an unknown kind or flag, a
	// compressed payload that does not decode, or a message out of place
	// during the handshake. The connection must be closed.
	ErrBadFrame = errors.New("wire: malformed frame")

	// ErrIntegrity reports a frame after the handshake whose MAC does not
	// match (on a connection without TLS): the bytes were altered on the
	// way, or a frame was injected, dropped or replayed. The connection
	// must be closed.
	ErrIntegrity = errors.New("wire: integrity check failed")

	// ErrAuth reports a failed handshake: the peer did not prove that it
	// knows the job secret, or refused our proof.
	ErrAuth = errors.New("wire: authentication failed")

	// ErrVersion reports a peer speaking another protocol version.
	ErrVersion = errors.New("wire: protocol version mismatch")

	// ErrSecretTooShort reports a job secret shorter than MinSecretLen bytes.
	ErrSecretTooShort = errors.New("wire: secret too short")

	// ErrInsecureSecretFile reports a secret file that others could read or
	// write (its mode allows group or world access, it is not a regular
	// file, or it is owned by another user).
	ErrInsecureSecretFile = errors.New("wire: insecure secret file")

	// ErrTLS reports a TLS configuration that cannot be loaded, a TLS
	// handshake that failed (a peer certificate not signed by the CA, …),
	// or a peer on the other side of the TLS divide (one end configured
	// with TLS, the other without).
	ErrTLS = errors.New("wire: TLS")

	// ErrRefused reports a handshake the peer refused before it began,
	// with its reason (it requires TLS, it is busy).
	ErrRefused = errors.New("wire: connection refused by the peer")

	// ErrBusy, with ErrRefused, reports a peer at its limit of connections
	// being authenticated; trying again later may succeed.
	ErrBusy = errors.New("busy")
)
