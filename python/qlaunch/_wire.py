"""qlaunch's wire protocol (docs/protocol.md), for the Python client.

Pure functions over bytes plus a small framed connection over a socket. The
Go package launcher/wire is the reference; docs/protocol.md is the
specification both are tested against.
"""

import hashlib
import hmac
import os
import struct


def _zstandard():
    """The zstandard module, imported on first use (most links never
    compress, and its import is a tenth of the package's); None when it is
    not installed: decoding a zstd frame then fails with a clear error."""
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard

PROTOCOL_VERSION = 2

# Message kinds (one byte in every frame header).
HELLO, AUTH, SUBMIT, RESULT, ERROR, CANCEL, LOG, STATUS, LOAD, SHUTDOWN, \
    HEARTBEAT, JOIN = range(1, 13)
KIND_NAMES = {HELLO: "hello", AUTH: "auth", SUBMIT: "submit", RESULT: "result",
              ERROR: "error", CANCEL: "cancel", LOG: "log", STATUS: "status",
              LOAD: "load", SHUTDOWN: "shutdown", HEARTBEAT: "heartbeat",
              JOIN: "join"}

FLAG_S2 = 1
FLAG_ZSTD = 2

HEADER = struct.Struct(">IBB")
DEFAULT_MAX_FRAME = 64 << 20
HANDSHAKE_MAX_FRAME = 4 << 10
MAX_BATCH = 1 << 20
NONCE_SIZE = 32

LABEL_CLIENT = b"qlaunch wire client proof\x00"
LABEL_SERVER = b"qlaunch wire server proof\x00"
LABEL_CLIENT_FRAMES = b"qlaunch wire client frames\x00"
LABEL_SERVER_FRAMES = b"qlaunch wire server frames\x00"
TAG_SIZE = 16
MAX_MAC_SEQ = (1 << 48) - 1

# Result status.
RESULT_OK, RESULT_ERROR, RESULT_CANCELLED, RESULT_LOST = range(4)


class ProtocolError(Exception):
    """The peer sent bytes that do not follow the protocol."""


class AuthError(ProtocolError):
    """The handshake failed: a peer did not prove the job secret."""


class IntegrityError(ProtocolError):
    """A frame after the handshake carries a MAC that does not match: the
    connection was altered on the way."""


# --- integers -------------------------------------------------------------

_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def uvarint(x):
    """The unsigned LEB128 encoding of x (Go's binary.AppendUvarint)."""
    if x < 0x80:
        return _ONE_BYTE[x]
    if x < 0x4000:
        return bytes(((x & 0x7F) | 0x80, x >> 7))
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def varint(x):
    """The zigzag varint encoding of a signed x (Go's binary.AppendVarint)."""
    return uvarint((x << 1) ^ (x >> 63) if x < 0 else x << 1)


def read_uvarint(b, i):
    """Decodes a uvarint at b[i:]; returns (value, next index)."""
    x = 0
    shift = 0
    n = len(b)
    while True:
        if i >= n or shift > 63:
            raise ProtocolError("truncated or overlong varint")
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            if x >= 1 << 64:
                raise ProtocolError("varint overflows 64 bits")
            return x, i
        shift += 7


def read_varint(b, i):
    u, i = read_uvarint(b, i)
    return (u >> 1) ^ -(u & 1), i


def read_bytes(b, i):
    n, i = read_uvarint(b, i)
    if n > len(b) - i:
        raise ProtocolError("length %d past the end of the message" % n)
    return bytes(b[i:i + n]), i + n


def string(s):
    if isinstance(s, str):
        s = s.encode()
    return uvarint(len(s)) + s


# --- handshake ------------------------------------------------------------

def hello(nonce, role, rank, host, version=PROTOCOL_VERSION):
    """The payload of a hello frame."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError("a nonce is %d bytes" % NONCE_SIZE)
    return struct.pack(">H", version) + nonce + string(role) + varint(rank) + string(host)


def decode_hello(b):
    """Returns (version, nonce, role, rank, host) of a hello payload."""
    if len(b) < 2:
        raise ProtocolError("hello of %d bytes" % len(b))
    (version,) = struct.unpack_from(">H", b)
    if version != PROTOCOL_VERSION:
        raise ProtocolError("peer speaks protocol version %d, this client version %d"
                            % (version, PROTOCOL_VERSION))
    if len(b) < 2 + NONCE_SIZE:
        raise ProtocolError("hello too short for a nonce")
    nonce = bytes(b[2:2 + NONCE_SIZE])
    role, i = read_bytes(b, 2 + NONCE_SIZE)
    rank, i = read_varint(b, i)
    host, i = read_bytes(b, i)
    if i != len(b):
        raise ProtocolError("%d bytes after the hello" % (len(b) - i))
    return version, nonce, role.decode(errors="replace"), rank, host.decode(errors="replace")


def proof(secret, label, client_hello, server_hello):
    """HMAC-SHA256(secret, label | len | client hello | len | server hello)."""
    m = hmac.new(secret, digestmod=hashlib.sha256)
    m.update(label)
    m.update(struct.pack(">I", len(client_hello)))
    m.update(client_hello)
    m.update(struct.pack(">I", len(server_hello)))
    m.update(server_hello)
    return m.digest()


def frame_keys(secret, client_hello, server_hello):
    """The two frame MAC keys of a connection: (client's, server's)."""
    return (proof(secret, LABEL_CLIENT_FRAMES, client_hello, server_hello),
            proof(secret, LABEL_SERVER_FRAMES, client_hello, server_hello))


def aesgcm():
    """A class of AES-256-GCM objects: made of a key, their encrypt(nonce,
    b"", aad) returns the tag of aad. The interpreter's own libcrypto
    (OpenSSL 3 or 1.1, which its ssl module uses) through ctypes when it
    loads (about 20 ms), else cryptography's AESGCM (its import takes 0.15
    to 0.5 s). A client calls this before it connects, so that the
    server's heartbeats do not wait behind the loading."""
    if _LibcryptoGCM.load() is not None:
        return _LibcryptoGCM
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ProtocolError("a connection without TLS authenticates its frames with AES-GCM, "
                            "which needs OpenSSL's libcrypto or python3-cryptography "
                            "(pip install cryptography), or connect with TLS")
    return AESGCM


class _LibcryptoGCM:
    """AES-256-GCM tags of empty plaintexts (GMAC) by libcrypto's EVP
    functions through ctypes; the key is set once, each tag sets the nonce.
    Not safe for concurrent use (a FrameMAC serves one direction)."""

    _lib = None
    _tried = False

    @classmethod
    def load(cls):
        """The libcrypto library with its functions typed, or None."""
        if cls._tried:
            return cls._lib
        cls._tried = True
        try:
            import ctypes
        except ImportError:
            return None
        for name in ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.3.dylib", "libcrypto.dylib"):
            try:
                lib = ctypes.CDLL(name)
                p, i, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
                lib.EVP_CIPHER_CTX_new.restype = p
                lib.EVP_CIPHER_CTX_new.argtypes = []
                lib.EVP_CIPHER_CTX_free.restype = None
                lib.EVP_CIPHER_CTX_free.argtypes = [p]
                lib.EVP_aes_256_gcm.restype = p
                lib.EVP_aes_256_gcm.argtypes = []
                lib.EVP_EncryptInit_ex.restype = i
                lib.EVP_EncryptInit_ex.argtypes = [p, p, p, cp, cp]
                lib.EVP_EncryptUpdate.restype = i
                lib.EVP_EncryptUpdate.argtypes = [p, p, ctypes.POINTER(i), cp, i]
                lib.EVP_EncryptFinal_ex.restype = i
                lib.EVP_EncryptFinal_ex.argtypes = [p, cp, ctypes.POINTER(i)]
                lib.EVP_CIPHER_CTX_ctrl.restype = i
                lib.EVP_CIPHER_CTX_ctrl.argtypes = [p, i, i, p]
            except (OSError, AttributeError):
                continue
            lib.ctypes = ctypes
            cls._lib = lib
            return lib
        return None

    _SET_IVLEN, _GET_TAG = 0x9, 0x10

    def __init__(self, key):
        lib = self.load()
        if lib is None or len(key) != 32:
            raise ValueError("libcrypto GMAC: no libcrypto, or a key of %d bytes" % len(key))
        self._ctx = None
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        self._lib, self._ctx = lib, ctx
        ok = (lib.EVP_EncryptInit_ex(ctx, lib.EVP_aes_256_gcm(), None, None, None) == 1
              and lib.EVP_CIPHER_CTX_ctrl(ctx, self._SET_IVLEN, 12, None) == 1
              and lib.EVP_EncryptInit_ex(ctx, None, None, bytes(key), None) == 1)
        if not ok:
            raise ValueError("libcrypto GMAC: could not set up AES-256-GCM")
        self._n = lib.ctypes.c_int()
        self._ref = lib.ctypes.byref(self._n)
        self._tag = lib.ctypes.create_string_buffer(16)

    def encrypt(self, nonce, data, aad):
        if data or len(nonce) != 12:
            raise ValueError("libcrypto GMAC: tags of empty plaintexts with 12-byte nonces only")
        lib, ctx = self._lib, self._ctx
        aad = bytes(aad)
        ok = lib.EVP_EncryptInit_ex(ctx, None, None, None, bytes(nonce)) == 1
        # The additional data in parts below 2 GiB (the length is an int).
        for i in range(0, len(aad), 1 << 30):
            ok = ok and lib.EVP_EncryptUpdate(ctx, None, self._ref, aad[i:i + (1 << 30)],
                                              min(len(aad) - i, 1 << 30)) == 1
        ok = ok and lib.EVP_EncryptFinal_ex(ctx, self._tag, self._ref) == 1
        ok = ok and lib.EVP_CIPHER_CTX_ctrl(ctx, self._GET_TAG, 16, self._tag) == 1
        if not ok:
            raise IntegrityError("libcrypto GMAC failed")
        return self._tag.raw

    def __del__(self):
        if getattr(self, "_ctx", None):
            self._lib.EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = None


class FrameMAC:
    """The MAC of one direction's frames after the handshake (without TLS):
    GMAC, that is AES-256-GCM of nothing, with the frame key, the nonce
    header (6 bytes) | sequence number (6 bytes, big-endian, from 0) and
    the payload as sent as the additional data (see aesgcm)."""

    def __init__(self, key):
        self._aead = aesgcm()(key)
        self.seq = 0

    def _nonce(self, header):
        if self.seq > MAX_MAC_SEQ:
            raise IntegrityError("%d frames on one connection, the most a frame MAC can count" % self.seq)
        nonce = bytes(header[:6]) + self.seq.to_bytes(8, "big")[2:]
        self.seq += 1
        return nonce

    def tag(self, header, payload):
        return self._aead.encrypt(self._nonce(header), b"", bytes(payload))

    def check(self, header, payload, tag):
        seq = self.seq
        want = self.tag(header, payload)
        if not hmac.compare_digest(want, bytes(tag)):
            raise IntegrityError("frame %d after the handshake (kind %d, %d bytes) carries a MAC that does not "
                                 "match: the connection was altered on the way" % (seq, header[4], len(payload)))


def load_secret(path):
    """Reads a job secret file: its content less trailing white space. The
    file must be private to the user (mode 0600 or 0400), as for the CLI."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise PermissionError("secret file %s has mode %#o, so others may read it; "
                              "make it private to you: chmod 600 %s"
                              % (path, st.st_mode & 0o777, path))
    with open(path, "rb") as f:
        key = f.read(64 << 10).rstrip(b" \t\r\n")
    if len(key) < 32:
        raise ValueError("secret file %s: %d bytes, need at least 32 "
                         "(write one with: openssl rand -hex 32 > %s)" % (path, len(key), path))
    return key


# --- messages -------------------------------------------------------------

def task(kernel, args=(), payload=b"", log_level=0, log_depth=-1):
    """The body of one task record."""
    parts = [varint(log_level), varint(log_depth), string(kernel), uvarint(len(args))]
    for a in args:
        parts.append(string(a))
    parts.append(uvarint(len(payload)))
    parts.append(payload)
    return b"".join(parts)


def record(rid, body):
    return uvarint(rid) + uvarint(len(body)) + body


def records(batch):
    """Yields (id, body) of every record of a task or result batch."""
    i = 0
    n = len(batch)
    while i < n:
        rid, i = read_uvarint(batch, i)
        ln, i = read_uvarint(batch, i)
        if ln > n - i:
            raise ProtocolError("record body past the end of the batch")
        yield rid, batch[i:i + ln]
        i += ln


def decode_result(b):
    """Returns (status, value, message, kernel, rank, host) of a result body."""
    if not b:
        raise ProtocolError("empty result")
    status = b[0]
    if status == RESULT_OK:
        value, i = read_bytes(b, 1)
        if i != len(b):
            raise ProtocolError("trailing bytes after a result")
        return status, value, "", "", 0, ""
    if status > RESULT_LOST:
        raise ProtocolError("result status %d" % status)
    msg, i = read_bytes(b, 1)
    kernel, i = read_bytes(b, i)
    rank, i = read_varint(b, i)
    host, i = read_bytes(b, i)
    if i != len(b):
        raise ProtocolError("trailing bytes after a result")
    return status, None, msg.decode(errors="replace"), kernel.decode(errors="replace"), \
        rank, host.decode(errors="replace")


def result(status, value=b"", message="", kernel="", rank=0, host=""):
    """The body of one result record (used by tests and servers)."""
    if status == RESULT_OK:
        return bytes([status]) + uvarint(len(value)) + value
    return bytes([status]) + string(message) + string(kernel) + varint(rank) + string(host)


def cancel(ids):
    return uvarint(len(ids)) + b"".join(uvarint(i) for i in ids)


def text(s):
    return string(s)


def decode_text(b):
    s, i = read_bytes(b, 0)
    if i != len(b):
        raise ProtocolError("trailing bytes after a text message")
    return s.decode(errors="replace")


def decode_log(b, i=0):
    """Decodes the log record at b[i:]; returns (record dict, next index)."""
    tid, i = read_uvarint(b, i)
    t, i = read_varint(b, i)
    level, i = read_varint(b, i)
    rank, i = read_varint(b, i)
    host, i = read_bytes(b, i)
    msg, i = read_bytes(b, i)
    n, i = read_uvarint(b, i)
    if n % 2 or n > len(b) - i:
        raise ProtocolError("log attributes")
    attrs = []
    for _ in range(n):
        a, i = read_bytes(b, i)
        attrs.append(a.decode(errors="replace"))
    return {"task": tid, "time": t, "level": level, "rank": rank,
            "host": host.decode(errors="replace"), "msg": msg.decode(errors="replace"),
            "attrs": attrs}, i


# --- compression ----------------------------------------------------------

def s2_decode(src, limit=DEFAULT_MAX_FRAME):
    """Decodes one s2 block (Snappy's block format plus s2's repeat-offset
    copies) without native code."""
    n, s = read_uvarint(src, 0)
    if n > limit:
        raise ProtocolError("s2 payload decodes to %d bytes, limit %d" % (n, limit))
    dst = bytearray()
    offset = 0
    ln = len(src)
    while s < ln:
        tag = src[s]
        kind = tag & 3
        if kind == 0:  # literal
            x = tag >> 2
            if x < 60:
                s += 1
            else:
                k = x - 59
                if s + 1 + k > ln:
                    raise ProtocolError("s2: truncated literal length")
                x = int.from_bytes(src[s + 1:s + 1 + k], "little")
                s += 1 + k
            length = x + 1
            if length > ln - s or len(dst) + length > n:
                raise ProtocolError("s2: literal past the end")
            dst += src[s:s + length]
            s += length
            continue
        if kind == 1:  # copy with a 1-byte offset, or a repeat
            if s + 2 > ln:
                raise ProtocolError("s2: truncated copy")
            toffset = ((tag & 0xE0) << 3) | src[s + 1]
            length = (tag >> 2) & 7
            s += 2
            if toffset == 0:  # repeat the last offset
                if length == 5:
                    length = src[s] + 4 if s < ln else -1
                    s += 1
                elif length == 6:
                    length = int.from_bytes(src[s:s + 2], "little") + (1 << 8) if s + 2 <= ln else -1
                    s += 2
                elif length == 7:
                    length = int.from_bytes(src[s:s + 3], "little") + (1 << 16) if s + 3 <= ln else -1
                    s += 3
                if length < 0:
                    raise ProtocolError("s2: truncated repeat")
            else:
                offset = toffset
            length += 4
        elif kind == 2:
            if s + 3 > ln:
                raise ProtocolError("s2: truncated copy")
            offset = int.from_bytes(src[s + 1:s + 3], "little")
            length = 1 + (tag >> 2)
            s += 3
        else:
            if s + 5 > ln:
                raise ProtocolError("s2: truncated copy")
            offset = int.from_bytes(src[s + 1:s + 5], "little")
            length = 1 + (tag >> 2)
            s += 5
        d = len(dst)
        if offset <= 0 or d < offset or length > n - d:
            raise ProtocolError("s2: copy out of range")
        if offset >= length:
            dst += dst[d - offset:d - offset + length]
        else:  # overlapping: the pattern repeats
            pat = dst[d - offset:d]
            reps = length // offset + 1
            dst += (pat * reps)[:length]
    if len(dst) != n:
        raise ProtocolError("s2: decoded %d bytes, header says %d" % (len(dst), n))
    return bytes(dst)


class Codec:
    """Encodes and decodes frame payloads. compression is "none" or "zstd"
    (what this end sends); any received flag is decoded."""

    def __init__(self, compression="none", threshold=4096, max_frame=DEFAULT_MAX_FRAME):
        if compression not in ("none", "zstd"):
            raise ValueError("compression %r: want none or zstd" % compression)
        if compression == "zstd" and _zstandard() is None:
            raise ValueError("compression zstd needs python3-zstandard")
        self.compression = compression
        self.threshold = threshold
        self.max_frame = max_frame
        self._enc = None
        self._dec = None
        self.mac_send = None  # FrameMAC of what this end sends, once the handshake is done
        self.mac_recv = None

    def start_mac(self, send_key, recv_key):
        """Authenticates every frame from now on (a connection without TLS)."""
        self.mac_send, self.mac_recv = FrameMAC(send_key), FrameMAC(recv_key)

    def tag_size(self):
        """The length of the MAC after each received frame's payload."""
        return 0 if self.mac_recv is None else TAG_SIZE

    def verify(self, header, payload, tag):
        """Checks a received frame's MAC (before decode)."""
        if self.mac_recv is not None:
            self.mac_recv.check(header, payload, tag)

    def encode(self, kind, payload):
        """The bytes of one frame."""
        return b"".join(self.encode_parts(kind, payload))

    def encode_parts(self, kind, payload):
        """The bytes of one frame, in parts to send one after another:
        header, payload and, after the handshake without TLS, its MAC."""
        flags = 0
        if self.compression == "zstd" and len(payload) >= self.threshold:
            if self._enc is None:
                self._enc = _zstandard().ZstdCompressor(level=1, write_checksum=False,
                                                 write_content_size=True)
            z = self._enc.compress(payload)
            if len(z) < len(payload):
                payload, flags = z, FLAG_ZSTD
        if len(payload) > self.max_frame:
            raise ValueError("frame of %d bytes, limit %d" % (len(payload), self.max_frame))
        header = HEADER.pack(len(payload), kind, flags)
        if self.mac_send is None:
            return [header, payload]
        return [header, payload, self.mac_send.tag(header, payload)]

    def decode(self, kind, flags, payload):
        """The payload of a received frame, decompressed."""
        if not 0 < kind < 13:
            raise ProtocolError("unknown message kind %d" % kind)
        if flags == 0:
            return payload
        if flags == FLAG_S2:
            return s2_decode(payload, self.max_frame)
        if flags == FLAG_ZSTD:
            zstd = _zstandard()
            if zstd is None:
                raise ProtocolError("the server sent a zstd frame and python3-zstandard is not installed")
            if self._dec is None:
                self._dec = zstd.ZstdDecompressor()
            try:
                out = self._dec.decompress(payload, max_output_size=self.max_frame)
            except zstd.ZstdError as e:
                raise ProtocolError("zstd: %s" % e)
            if len(out) > self.max_frame:
                raise ProtocolError("zstd payload decodes past the frame limit")
            return out
        raise ProtocolError("unknown frame flags %#x" % flags)


def status_request(sid):
    return uvarint(sid) + b"\x00"


def decode_status(b):
    """Returns (id, ranks) of a status reply; each rank a dict of rank,
    parent, depth, role, host, slots, busy, queued, done (the extension
    block is skipped)."""
    sid, i = read_uvarint(b, 0)
    if i >= len(b):
        raise ProtocolError("status without its flag")
    flag = b[i]
    i += 1
    if flag == 0:
        return sid, None
    if flag != 1:
        raise ProtocolError("status flag %d" % flag)
    n, i = read_uvarint(b, i)
    if n > len(b):
        raise ProtocolError("status rank count")
    ranks = []
    for _ in range(n):
        r = {}
        r["rank"], i = read_varint(b, i)
        r["parent"], i = read_varint(b, i)
        r["depth"], i = read_uvarint(b, i)
        role, i = read_bytes(b, i)
        host, i = read_bytes(b, i)
        r["role"], r["host"] = role.decode(errors="replace"), host.decode(errors="replace")
        for k in ("slots", "busy", "queued", "done"):
            r[k], i = read_uvarint(b, i)
        ranks.append(r)
    return sid, ranks
