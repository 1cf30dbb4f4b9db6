"""The client's framing of a map (records built from shared parts) against
the reference encoding of one record, and its sending of frames in parts
over a real socket, a send taking any part of them. No runtime needed."""

import socket
import threading
import unittest

from qlaunch import _wire as wire
from qlaunch import client as qc


class MapFramesTest(unittest.TestCase):
    def test_records_match_the_reference_encoding(self):
        fn = b"\x00\x00\x00\x05hello"
        args = ("/a/path",)
        head = wire.varint(-4) + wire.varint(-1) + wire.string("python") + wire.uvarint(len(args)) \
            + b"".join(wire.string(a) for a in args)
        # Calls of a few lengths, around the one-byte varint boundary and
        # past a batch's size, so that records of one length repeat and a
        # map spans several frames.
        calls = [bytes([i % 251]) * (1 + (i * 37) % 140) for i in range(300)] + [b"x" * 300000] * 5
        base = 9 << 32
        frames = qc._map_frames(base, head, fn, calls)
        self.assertGreater(len(frames), 1)
        got = []
        for kind, payload in frames:
            self.assertEqual(kind, wire.SUBMIT)
            self.assertLessEqual(len(payload), wire.MAX_BATCH + 300100)
            got.extend(wire.records(payload))
        self.assertEqual(len(got), len(calls))
        for i, (rid, body) in enumerate(got):
            self.assertEqual(rid, base | i)
            self.assertEqual(body, wire.task("python", args, fn + calls[i], -4, -1))


class SendTest(unittest.TestCase):
    def test_parts_arrive_whole_and_in_order(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        # A small send buffer: sendmsg takes part of the parts, often
        # ending inside one.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        c = qc.Client.__new__(qc.Client)
        c._sock, c._tls = a, False
        parts = [bytes([i % 256]) * (i % 700) for i in range(3000)]  # more parts than one sendmsg takes
        want = b"".join(parts)
        got = bytearray()

        def read():
            while len(got) < len(want):
                chunk = b.recv(1 << 16)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=read)
        t.start()
        c._sendmsg(list(parts))
        t.join(60)
        self.assertEqual(bytes(got), want)


if __name__ == "__main__":
    unittest.main()
