"""docs/protocol.md's vectors against the Python implementation (no runtime
needed)."""

import os
import random
import unittest

from qlaunch import _wire as wire

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "protocol.md")


def vectors():
    vs = {}
    inside = False
    with open(DOC) as f:
        for line in f:
            line = line.strip()
            if line == "```vectors":
                inside = True
            elif inside and line == "```":
                inside = False
            elif inside and line:
                name, hx = line.split(" ", 1)
                vs[name] = bytes.fromhex(hx)
    return vs


V = vectors()
PAYLOAD = b"qlaunch " * 64


class VectorTest(unittest.TestCase):
    def test_has_vectors(self):
        self.assertGreaterEqual(len(V), 20)

    def test_integers(self):
        self.assertEqual(wire.uvarint(300), V["uvarint-300"])
        self.assertEqual(wire.varint(-1), V["varint-minus-1"])
        self.assertEqual(wire.varint(-4), V["varint-minus-4"])
        self.assertEqual(wire.varint(300), V["varint-300"])
        for x in (0, 1, -1, 127, 128, -129, 2**40, -(2**62), 2**63 - 1):
            self.assertEqual(wire.read_varint(wire.varint(x), 0)[0], x)
        self.assertEqual(wire.read_uvarint(wire.uvarint(2**64 - 1), 0)[0], 2**64 - 1)

    def frame(self, name):
        b = V[name]
        n, kind, flags = wire.HEADER.unpack(b[:6])
        self.assertEqual(n, len(b) - 6)
        return kind, flags, wire.Codec().decode(kind, flags, b[6:])

    def test_frames(self):
        codec = wire.Codec()
        self.assertEqual(codec.encode(wire.HEARTBEAT, b""), V["frame-heartbeat"])
        self.assertEqual(codec.encode(wire.SHUTDOWN, wire.text("interrupted")), V["frame-shutdown"])
        kind, flags, p = self.frame("frame-shutdown")
        self.assertEqual((kind, flags, wire.decode_text(p)), (wire.SHUTDOWN, 0, "interrupted"))

    def test_compressed_frames(self):
        for name, flag in (("frame-zstd", wire.FLAG_ZSTD), ("frame-s2", wire.FLAG_S2)):
            kind, flags, p = self.frame(name)
            self.assertEqual((kind, flags), (wire.SUBMIT, flag), name)
            self.assertEqual(p, PAYLOAD, name)

    def test_zstd_round_trip(self):
        codec = wire.Codec("zstd", threshold=16)
        f = codec.encode(wire.SUBMIT, PAYLOAD)
        n, kind, flags = wire.HEADER.unpack(f[:6])
        self.assertEqual(flags, wire.FLAG_ZSTD)
        self.assertLess(n, len(PAYLOAD))
        self.assertEqual(codec.decode(kind, flags, f[6:]), PAYLOAD)

    def test_handshake(self):
        hc = wire.hello(b"\x11" * 32, "client", -1, "laptop")
        hs = wire.hello(b"\x22" * 32, "server", 0, "node1")
        self.assertEqual(hc, V["hello-client"])
        self.assertEqual(hs, V["hello-server"])
        self.assertEqual(wire.decode_hello(hs), (wire.PROTOCOL_VERSION, b"\x22" * 32, "server", 0, "node1"))
        key = V["secret"]
        self.assertEqual(wire.proof(key, wire.LABEL_CLIENT, hc, hs), V["proof-client"])
        self.assertEqual(wire.proof(key, wire.LABEL_SERVER, hc, hs), V["proof-server"])

    def test_frame_mac(self):
        kc, ks = wire.frame_keys(V["secret"], V["hello-client"], V["hello-server"])
        self.assertEqual((kc, ks), (V["mac-key-client"], V["mac-key-server"]))
        client, server = wire.Codec(), wire.Codec()
        client.start_mac(kc, ks)
        server.start_mac(ks, kc)
        self.assertEqual(client.encode(wire.HEARTBEAT, b""), V["frame-heartbeat-mac"])
        self.assertEqual(client.encode(wire.SUBMIT, V["submit-echo"]), V["frame-submit-mac"])
        self.assertEqual(server.encode(wire.SHUTDOWN, wire.text("interrupted")), V["frame-shutdown-mac"])
        # The client checks the server's frame; an altered or replayed one fails.
        f = V["frame-shutdown-mac"]
        n = len(f) - 6 - wire.TAG_SIZE
        self.assertEqual(client.tag_size(), wire.TAG_SIZE)
        client.verify(f[:6], f[6:6 + n], f[6 + n:])
        with self.assertRaises(wire.IntegrityError):
            client.verify(f[:6], f[6:6 + n], f[6 + n:])  # the same frame again: replayed
        fresh = wire.Codec()
        fresh.start_mac(kc, ks)
        altered = bytearray(f)
        altered[8] ^= 1
        with self.assertRaises(wire.IntegrityError):
            fresh.verify(bytes(altered[:6]), bytes(altered[6:6 + n]), bytes(altered[6 + n:]))

    def test_messages(self):
        body = wire.task("echo", ["a", "bc"], b"xyz", 0, -1)
        self.assertEqual(wire.record(1 << 32, body), V["submit-echo"])
        self.assertEqual(wire.task("fanout", ["10", "2"], b"", -4, 2), V["task-fanout"])
        self.assertEqual(wire.record(1 << 32, wire.result(wire.RESULT_OK, b"a bc")), V["result-ok"])
        ((rid, res),) = list(wire.records(V["result-ok"]))
        self.assertEqual((rid, wire.decode_result(res)[:2]), (1 << 32, (0, b"a bc")))
        self.assertEqual(wire.decode_result(V["result-error"]), (1, None, "boom", "fail", 1, "n1"))
        self.assertEqual(wire.decode_result(V["result-lost"]), (3, None, "connection lost", "sleep", 3, "n2"))
        self.assertEqual(wire.cancel([1 << 32, (1 << 32) | 1, 300]), V["cancel"])
        rec, i = wire.decode_log(V["log"])
        self.assertEqual(i, len(V["log"]))
        self.assertEqual(rec, {"task": 1 << 32, "time": 1700000000000000000, "level": 4, "rank": 1,
                               "host": "n1", "msg": "hi", "attrs": ["k", "v"]})


    def test_status(self):
        self.assertEqual(wire.status_request(7), V["status-request"])
        sid, ranks = wire.decode_status(V["status-reply"])
        self.assertEqual(sid, 7)
        self.assertEqual([(r["rank"], r["parent"], r["role"], r["slots"], r["busy"], r["queued"], r["done"])
                          for r in ranks],
                         [(0, -1, "server+manager", 0, 0, 0, 0), (1, 0, "worker", 2, 1, 3, 40)])


class MalformedTest(unittest.TestCase):
    """Decoders of the server's bytes fail with ProtocolError, never with
    another exception, on any input (a seeded random search)."""

    def test_mutations(self):
        rng = random.Random(1)
        seeds = [V["frame-s2"][6:], V["result-error"], V["log"], V["hello-server"], V["result-ok"],
                 V["status-reply"]]
        decoders = [wire.s2_decode, wire.decode_result, wire.decode_log, wire.decode_hello,
                    lambda b: list(wire.records(b)), wire.decode_status]
        for _ in range(3000):
            k = rng.randrange(len(seeds))
            b = bytearray(seeds[k])
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0 and b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
                elif op == 1 and b:
                    del b[rng.randrange(len(b)):]
                else:
                    b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
            try:
                decoders[k](bytes(b))
            except wire.ProtocolError:
                pass

    def test_s2_limits(self):
        with self.assertRaises(wire.ProtocolError):
            wire.s2_decode(wire.uvarint(1 << 40))
        with self.assertRaises(wire.ProtocolError):
            wire.Codec().decode(wire.SUBMIT, 4, b"")
        with self.assertRaises(wire.ProtocolError):
            wire.Codec().decode(0, 0, b"")


if __name__ == "__main__":
    unittest.main()
