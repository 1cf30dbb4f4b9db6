// Package wire is qlaunch's wire protocol: length-prefixed frames, optional
// compression (zstd or s2) above a size threshold, an HMAC challenge–response
// handshake that proves both ends know the job secret, and the encoding of
// every message kind.
//
// The protocol knows nothing about TCP: it runs over any io.ReadWriter, so
// tests use net.Pipe and fuzzers use byte slices.
//
// # Frames
//
// Every message travels in one frame (after the handshake, followed by its
// MAC: see Frame MAC):
//
//	+----------------------+-----------+------------+------------------+
//	| length: uint32, BE   | kind: u8  | flags: u8  | payload (length) |
//	+----------------------+-----------+------------+------------------+
//
// length counts the payload as sent (compressed, if it is). kind is one of
// the Kind constants; 0 and unknown kinds are errors. flags holds at most one
// of bit 0 (the payload is one s2 block) and bit 1 (the payload is zstd);
// any other bit is an error. A frame is plain when no flag is set.
//
// A reader refuses, with ErrFrameTooLarge and before allocating or reading
// past the header, a length above its MaxFrame (default 64 MiB). The size
// of a compressed payload once decoded is capped at MaxFrame too: an s2
// block's declared length is checked before decoding. A zstd payload is
// one zstd frame; its block headers are walked before decoding, which
// refuses a frame of raw or RLE blocks past the limit, or one that declares
// more than its blocks can hold, having allocated nothing, and the frame
// is then decoded into one buffer of its declared size or its blocks'
// bound, at most MaxFrame, that the decoder never grows: a small frame
// that expands past the limit costs at most about 2.5 × MaxFrame before it
// is refused. Conns that share a DecodeLimit (Options.Decode; a launcher
// rank shares one among its connections) decode at most its number of
// frames that may expand more than sixteenfold at once. An unknown kind or flag, or a payload that does
// not decode, is ErrBadFrame. Any of these ends the connection: the stream
// is out of step, and the caller closes it.
//
// A writer sends payloads shorter than the threshold (default 4 KiB) plain,
// compresses longer ones with the Conn's Compression, and sends them plain
// after all when compression does not make them smaller. Payloads of
// 128 KiB or more are probed first: unless the s2 encoding of their first
// 64 KiB is an eighth smaller, they go plain without a full attempt (zstd
// spent 0.8 ms to save nothing on a random MiB). A zstd Conn sends payloads
// above 2 MiB as s2, whose cost stays linear in the size. A receiver
// decodes whatever it is sent, so the two ends need not agree on
// compression. zstd frames are sent without their optional content
// checksum (the transport guards the bytes); a frame that carries one is
// still checked. This changes no byte a receiver must understand, so the
// protocol version stays.
//
// Batch messages (tasks, results, log records) longer than MaxBatch
// (1 MiB) are sent as several frames of whole records (WriteBatch), so a
// map of any total size stays far below MaxFrame; a receiver handles each
// frame as a batch of its own. Only a single record can make a frame
// larger than MaxBatch.
// WriteFrameParts sends a frame whose payload is given in two parts (a
// relay's record header and the record body it received) as one frame;
// on the wire it is indistinguishable from WriteFrame of the joined parts.
// Frames are buffered and Flush writes them in one write; a Conn reuses its
// buffers, so plain frames cost no allocation in steady state. A reader
// that keeps a large payload past the next read (Keep) takes its buffer
// and may give it back once done with it (Recycle): the Conn reads later
// frames into it rather than into fresh memory.
//
// Relays copy task bodies through without decoding them; the server checks
// each one a client sends with CheckTask (it decodes, and the kernel name
// is non-empty, at most MaxKernelName bytes of UTF-8 without control
// characters), which allocates nothing.
//
// # Handshake
//
// Before any other frame, the dialing end runs ClientHandshake and the
// accepting end ServerHandshake. Both ends prove knowledge of the job secret
// K, each with a fresh 32-byte nonce from crypto/rand:
//
//	client → server  hello  version | nonce Nc | role | rank | host
//	server → client  hello  version | nonce Ns | role | rank | host
//	client → server  auth   HMAC-SHA256(K, "client proof" | Hc | Hs)
//	server → client  auth   HMAC-SHA256(K, "server proof" | Hc | Hs)
//
// where Hc and Hs are the two hello payloads, each prefixed with its length.
// The server answers with an error frame instead when the client's proof is
// wrong. Proofs are compared in constant time (hmac.Equal). Each proof binds
// both nonces, both hellos and its direction, so a recorded proof fails on
// a new connection (the peer's nonce differs) and a proof sent back to its
// maker fails (the direction differs). The client checks the server's proof
// too, so it cannot be fooled by an impostor that accepts anything.
//
// The version is the first field of a hello and is checked first: a peer of
// another ProtocolVersion gets ErrVersion naming both versions (the server
// still sends its hello, so the client can tell). Until the peer has
// proved the secret, frames are limited to 4 KiB and must be plain, so an
// unauthenticated peer can make a Conn read or allocate only a few KiB.
//
// The handshake sets no deadline: the caller sets one on the net.Conn before
// it (and clears or extends it after), so a silent peer cannot hold a
// connection open.
//
// # Frame MAC
//
// After the handshake every frame each way carries a 16-byte tag after its
// payload (not counted in its length), unless both ends were made with
// Options.SkipMAC (a connection inside TLS, which authenticates every
// record itself):
//
//	Kc  = HMAC-SHA256(K, "client frames" | Hc | Hs)    the client's frames
//	Ks  = HMAC-SHA256(K, "server frames" | Hc | Hs)    the server's frames
//	tag = GMAC(key, nonce = header | seq (48 bits), data = payload as sent)
//
// GMAC is AES-256-GCM with nothing to encrypt (the standard library's,
// hardware-accelerated: 0.36 ms per MiB against 1.1 ms for HMAC-SHA256).
// seq counts a direction's frames from 0. The keys depend on both nonces,
// so they are new on every connection; the nonce binds the header and the
// frame's place in the stream. A relay that forwards a large body behind a
// new record header (WriteFrameParts) MACs the two without joining them:
// GHASH is linear, so the tag of the joined payload follows from the
// standard library's GMAC of the body and a few multiplications in
// GF(2^128) (frameMAC.sumParts); the bytes on the wire are the same. ReadFrame checks the tag before the kind,
// the flags and any decompression, and refuses a frame that was altered,
// injected, dropped, replayed, reordered, or reflected from the other
// direction, with ErrIntegrity; the caller closes the connection. Without
// the MAC an on-path relay could inject frames after the handshake, and a
// task runs commands.
//
// # Secret
//
// The job secret is a Secret, which never prints: String, Format, LogValue
// and MarshalText give "REDACTED". It is read from a file (LoadSecretFile)
// that must be a regular file owned by the user with mode 0600 or 0400;
// EnsureSecretFile creates one with a fresh secret on first use.
// ResolveSecretPath picks the file: --secret-file, else $QLAUNCH_SECRET_FILE,
// else, inside a scheduler's job ($SLURM_JOB_ID, $PBS_JOBID), the job's
// own job-<id>/secret beside the address file (JobSecretPath, a directory
// of mode 0700), else qlaunch/secret under the user's configuration
// directory. The user's long-lived secret is used in a job only when asked
// for (UserSecret, "@user", as the file).
//
// # Concurrency
//
// A Conn may be read by one goroutine and written by another at the same
// time, but not written (or read) by several. Stats may be called from any
// goroutine. The zstd encoder and decoder (Codecs) are safe for concurrent
// use and may be shared by many Conns through Options.Codecs.
package wire
