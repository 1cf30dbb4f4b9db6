package python

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Message types of the pipe protocol. Go → Python: msgRun, msgRunSame,
// msgPath, msgResume, msgCancelTask, msgSync. Python → Go: msgHello,
// msgDone, msgMap, msgMapRetry, msgMapFn, msgMapFnRetry, msgWait, msgNext,
// msgCancel, msgLog, msgSync.
const (
	msgHello      byte = 1  // body: protocol version (text)
	msgRun        byte = 2  // body: min log level (int8, Python's) | payload
	msgPath       byte = 3  // body: sys.path entries joined by os.pathsep
	msgResume     byte = 4  // body: a wait or next reply (see appendWaitReply, appendNextReply)
	msgCancelTask byte = 5  // body: empty; the task's Go context ended
	msgDone       byte = 6  // body: status (0 ok, 1 error) | pickled value or error text
	msgMap        byte = 7  // body: future uint32 | count uint32 | (len uint32 | payload)…
	msgWait       byte = 8  // body: future uint32 [| blocking uint8]: 1 when the executor blocks until the reply (a plain task's result())
	msgNext       byte = 9  // body: as msgWait
	msgCancel     byte = 10 // body: future uint32
	msgLog        byte = 11 // body: level int32 (slog) | count uint32 | (len uint32 | text)…: message, then key, value…
	msgSync       byte = 12 // body: empty; both ways: the executor echoes it once it has handled every message before it
	msgMapRetry   byte = 13 // body: as msgMap; the children are tasks of the retryable twin (RetryName)
	msgRunSame    byte = 14 // body: min log level (int8) | the payload's call bytes; its function is that of the last msgRun before it on the pipe
	msgMapFn      byte = 15 // body: future uint32 | len uint32 | function part | count uint32 | (len uint32 | call bytes)…: child i's payload is function part + call i
	msgMapFnRetry byte = 16 // body: as msgMapFn; the children are tasks of RetryName
)

// protocolVersion is what an executor's hello must say.
const protocolVersion = "qlaunch-executor 4"

// maxMessage bounds a message from an executor: a map of this many bytes of
// payloads is already far beyond any sane in-task map (the wire splits
// batches at 1 MiB anyway).
const maxMessage = 1 << 30

const msgHeader = 4 + 1 + 8

// appendMsg appends a message with the given body parts.
func appendMsg(dst []byte, typ byte, task uint64, body ...[]byte) []byte {
	n := 1 + 8
	for _, b := range body {
		n += len(b)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint64(dst, task)
	for _, b := range body {
		dst = append(dst, b...)
	}
	return dst
}

// readMsg reads one message; buf is reused when large enough.
func readMsg(r io.Reader, buf []byte) (typ byte, task uint64, body, newBuf []byte, err error) {
	var h [msgHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < 9 || n > maxMessage {
		return 0, 0, nil, buf, fmt.Errorf("python executor: message of %d bytes", n)
	}
	size := int(n) - 9
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	body = buf[:size]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, buf, err
	}
	return h[4], binary.BigEndian.Uint64(h[5:13]), body, buf, nil
}

var errShort = errors.New("python executor: malformed message")

// cutU32 splits a uint32 off the front of b.
func cutU32(b []byte) (uint32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, errShort
	}
	return binary.BigEndian.Uint32(b), b[4:], nil
}

// cutChunk splits a uint32-length-prefixed chunk off the front of b.
func cutChunk(b []byte) ([]byte, []byte, error) {
	n, b, err := cutU32(b)
	if err != nil || uint64(n) > uint64(len(b)) {
		return nil, nil, errShort
	}
	return b[:n:n], b[n:], nil
}

// decodeChunks decodes count uint32 | chunks…; the chunks alias b.
func decodeChunks(b []byte) ([][]byte, error) {
	n, b, err := cutU32(b)
	if err != nil || uint64(n) > uint64(len(b)/4) {
		return nil, errShort
	}
	out := make([][]byte, n)
	for i := range out {
		var c []byte
		if c, b, err = cutChunk(b); err != nil {
			return nil, err
		}
		out[i] = c
	}
	if len(b) != 0 {
		return nil, errShort
	}
	return out, nil
}

// Reply statuses of msgResume.
const (
	replyOK        byte = 0 // wait: count | values; next: count | (index | ok | value or error text)…
	replyError     byte = 1 // text
	replyCancelled byte = 2 // text
	replyNoMore    byte = 3 // text: next on a future whose results were all taken
)

func appendU32(dst []byte, v int) []byte { return binary.BigEndian.AppendUint32(dst, uint32(v)) }

func appendChunk(dst, b []byte) []byte {
	dst = appendU32(dst, len(b))
	return append(dst, b...)
}

// appendWaitReply encodes the reply to msgWait.
func appendWaitReply(dst []byte, vals [][]byte) []byte {
	dst = append(dst, replyOK)
	dst = appendU32(dst, len(vals))
	for _, v := range vals {
		dst = appendChunk(dst, v)
	}
	return dst
}

// appendErrReply encodes a failed wait or next.
func appendErrReply(dst []byte, status byte, text string) []byte {
	dst = append(dst, status)
	return append(dst, text...)
}

// decodeWait decodes the body of msgWait or msgNext: the future, and
// whether the executor blocks until the reply (anything after the flag is
// malformed).
func decodeWait(b []byte) (fid uint32, blocking bool, err error) {
	fid, rest, err := cutU32(b)
	if err != nil {
		return 0, false, err
	}
	switch {
	case len(rest) == 0:
		return fid, false, nil
	case len(rest) == 1 && rest[0] <= 1:
		return fid, rest[0] == 1, nil
	}
	return 0, false, errShort
}

// funcPart returns the function part of a python task's payload (its
// length uint32, then the pickled function; see python/qlaunch/_task.py),
// or nil when the payload is malformed (the executor reports that).
func funcPart(payload []byte) []byte {
	if len(payload) < 4 {
		return nil
	}
	n := binary.BigEndian.Uint32(payload)
	if uint64(n) > uint64(len(payload)-4) {
		return nil
	}
	return payload[: 4+n : 4+n]
}

// maxMapPayloads bounds the payloads a msgMapFn expands to: its function
// part is repeated in each child's payload.
const maxMapPayloads = 1 << 32

// payloadBlock is the size of the blocks a msgMapFn's payloads are cut
// from: one allocation for many small children, none kept alive by a
// single child for long beyond a few hundred others.
const payloadBlock = 256 << 10

// decodeMapFn decodes the body of msgMapFn: the future and the children's
// payloads, each the function part followed by its call bytes. The
// payloads are fresh memory (not aliasing b).
func decodeMapFn(b []byte) (fid uint32, payloads [][]byte, err error) {
	fid, b, err = cutU32(b)
	if err != nil {
		return 0, nil, err
	}
	fn, b, err := cutChunk(b)
	if err != nil {
		return 0, nil, err
	}
	calls, err := decodeChunks(b)
	if err != nil {
		return 0, nil, err
	}
	total := uint64(len(calls)) * uint64(len(fn))
	for _, c := range calls {
		total += uint64(len(c))
	}
	if total > maxMapPayloads {
		return 0, nil, fmt.Errorf("python executor: a map of %d bytes of payloads", total)
	}
	payloads = make([][]byte, len(calls))
	var block []byte
	for i, c := range calls {
		n := len(fn) + len(c)
		if cap(block)-len(block) < n {
			block = make([]byte, 0, max(n, payloadBlock))
		}
		start := len(block)
		block = append(append(block, fn...), c...)
		payloads[i] = block[start:len(block):len(block)]
	}
	return fid, payloads, nil
}
