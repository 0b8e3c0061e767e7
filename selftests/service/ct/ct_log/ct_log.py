#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small RFC 6962 Certificate Transparency log for HyperMesh's tests.

Debian ships no CT log server, so this is one: the HTTP API of RFC 6962
section 4 (add-chain, add-pre-chain, get-sth, get-sth-consistency,
get-proof-by-hash, get-entries, get-roots), an ECDSA P-256 key, SCTs and
signed tree heads as in sections 3.2 and 3.5, the Merkle tree of section 2.1.
Entries are sequenced at once (a maximum merge delay of zero); the tree lives
in memory.

It can also misbehave, from the command line (--misbehave) or at run time
(POST /ct/test/misbehave {"mode": MODE}), so tests can watch a verifier catch
it:
  none       behave
  fork       show a second view: history rewritten (entry 0 replaced) and one
             entry appended, so the next STH is inconsistent with earlier ones
  wrong-key  sign SCTs and STHs with a key that is not the log's
  bad-proof  serve inclusion proofs with one hash altered

  ct_log.py --key LOG.key.pem --roots ROOTS.pem [--host 127.0.0.1] [--port 0]
            [--port-file FILE] [--misbehave MODE]
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

POISON_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")
X509_ENTRY, PRECERT_ENTRY = 0, 1
MAX_ENTRIES_PER_GET = 64
MODES = ("none", "fork", "wrong-key", "bad-proof")


# ---- RFC 6962 section 2.1: the Merkle tree ----

def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes_: list) -> bytes:
    n = len(hashes_)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes_[0]
    k = split(n)
    return node_hash(mth(hashes_[:k]), mth(hashes_[k:]))


def path(m: int, hashes_: list) -> list:
    n = len(hashes_)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, hashes_[:k]) + [mth(hashes_[k:])]
    return path(m - k, hashes_[k:]) + [mth(hashes_[:k])]


def subproof(m: int, hashes_: list, whole: bool) -> list:
    n = len(hashes_)
    if m == n:
        return [] if whole else [mth(hashes_)]
    k = split(n)
    if m <= k:
        return subproof(m, hashes_[:k], whole) + [mth(hashes_[k:])]
    return subproof(m - k, hashes_[k:], False) + [mth(hashes_[:k])]


# ---- TLS encoding helpers (RFC 5246 section 4) ----

def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u64(v): return struct.pack(">Q", v)
def u24(v): return struct.pack(">I", v)[1:]
def vec16(b): return u16(len(b)) + b
def vec24(b): return u24(len(b)) + b
def b64(b): return base64.b64encode(b).decode()


class HttpError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class Log:
    def __init__(self, key, roots):
        self.key = key
        self.wrong_key = ec.generate_private_key(ec.SECP256R1())
        self.roots = roots
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        self.log_id = hashlib.sha256(spki).digest()
        self.entries = []      # (leaf_input, extra_data)
        self.hashes = []       # leaf hashes, in order
        self.by_hash = {}      # leaf hash -> index
        self.sct_cache = {}    # signed entry -> SCT response
        self.sth = None
        self.sth_mode = None
        self.mode = "none"
        self.lock = threading.Lock()

    # -- signing --
    def sign(self, data: bytes) -> bytes:
        key = self.wrong_key if self.mode == "wrong-key" else self.key
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
        # DigitallySigned: hash sha256 (4), signature ecdsa (3), opaque<0..2^16-1>
        return u8(4) + u8(3) + vec16(sig)

    # -- chains --
    def check_chain(self, chain):
        """Each certificate signed by the next, the last one a root or issued
        by one; returns the chain with its root."""
        for child, parent in zip(chain, chain[1:]):
            if not signed_by(child, parent):
                raise HttpError(400, "chain: a certificate is not signed by the next one")
        last = chain[-1]
        root_ders = [r.public_bytes(serialization.Encoding.DER) for r in self.roots]
        if last.public_bytes(serialization.Encoding.DER) in root_ders:
            return chain
        for r in self.roots:
            if last.issuer == r.subject and signed_by(last, r):
                return chain + [r]
        raise HttpError(400, "chain: does not end at an accepted root")

    def add(self, chain_b64, precert: bool):
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True))
                     for c in chain_b64]
        except Exception as e:  # any decoding failure is the client's
            raise HttpError(400, f"chain: cannot parse: {e}")
        if not chain:
            raise HttpError(400, "chain: empty")
        is_pre = any(e.oid == POISON_OID for e in chain[0].extensions)
        if is_pre != precert:
            raise HttpError(400, "add-pre-chain needs a precertificate (poison extension), "
                                 "add-chain a certificate without one")
        full = self.check_chain(chain)
        ders = [c.public_bytes(serialization.Encoding.DER) for c in full]
        if precert:
            if len(full) < 2:
                raise HttpError(400, "precertificate without its issuer")
            issuer_spki = full[1].public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            signed_entry = (hashlib.sha256(issuer_spki).digest() +
                            vec24(tbs_without_poison(chain[0].tbs_certificate_bytes)))
            entry_type = PRECERT_ENTRY
            # PrecertChainEntry: pre_certificate, precertificate_chain
            extra = vec24(ders[0]) + vec24(b"".join(vec24(d) for d in ders[1:]))
        else:
            signed_entry = vec24(ders[0])
            entry_type = X509_ENTRY
            extra = vec24(b"".join(vec24(d) for d in ders[1:]))
        with self.lock:
            cache_key = (entry_type, signed_entry)
            if cache_key in self.sct_cache:
                return self.sct_cache[cache_key]
            ts = int(time.time() * 1000)
            ext = b""
            # RFC 6962 3.2: the SCT's signed data
            signed = (u8(0) + u8(0) + u64(ts) + u16(entry_type) + signed_entry + vec16(ext))
            sct = {"sct_version": 0, "id": b64(self.log_id), "timestamp": ts,
                   "extensions": b64(ext), "signature": b64(self.sign(signed))}
            # RFC 6962 3.4: MerkleTreeLeaf
            leaf = (u8(0) + u8(0) + u64(ts) + u16(entry_type) + signed_entry + vec16(ext))
            self.append(leaf, extra)
            self.sct_cache[cache_key] = sct
            return sct

    def append(self, leaf, extra):
        h = leaf_hash(leaf)
        self.by_hash.setdefault(h, len(self.entries))
        self.entries.append((leaf, extra))
        self.hashes.append(h)
        self.sth = None

    # -- misbehaviour --
    def fork(self):
        """Rewrite history: a different entry 0, and one entry more, so the
        new tree head is not an extension of any earlier one.  The forged
        entries are well-formed x509 entries (the first root certificate), so
        a monitor sees a plausible second view, not garbage."""
        with self.lock:
            ts = int(time.time() * 1000)
            cert = self.roots[0].public_bytes(serialization.Encoding.DER)

            def forged(t):
                return u8(0) + u8(0) + u64(t) + u16(X509_ENTRY) + vec24(cert) + vec16(b"")
            if self.entries:
                self.entries[0] = (forged(ts), vec24(b""))
                self.hashes[0] = leaf_hash(forged(ts))
                self.by_hash = {}
                for i, h in enumerate(self.hashes):
                    self.by_hash.setdefault(h, i)
            self.append(forged(ts + 1), vec24(b""))

    # -- reads --
    def get_sth(self):
        with self.lock:
            if self.sth is None or self.sth_mode != self.mode:
                size = len(self.hashes)
                root = mth(self.hashes)
                ts = int(time.time() * 1000)
                # RFC 6962 3.5: TreeHeadSignature
                signed = u8(0) + u8(1) + u64(ts) + u64(size) + root
                self.sth = {"tree_size": size, "timestamp": ts,
                            "sha256_root_hash": b64(root),
                            "tree_head_signature": b64(self.sign(signed))}
                self.sth_mode = self.mode
            return self.sth

    def consistency(self, first, second):
        with self.lock:
            if not 0 <= first <= second <= len(self.hashes):
                raise HttpError(400, "first and second must satisfy 0 <= first <= second <= tree size")
            if first == 0 or first == second:
                return {"consistency": []}
            return {"consistency": [b64(h) for h in subproof(first, self.hashes[:second], True)]}

    def proof_by_hash(self, h, tree_size):
        with self.lock:
            if not 1 <= tree_size <= len(self.hashes):
                raise HttpError(400, "tree_size out of range")
            idx = self.by_hash.get(h)
            if idx is None or idx >= tree_size:
                raise HttpError(404, "no such leaf in a tree of that size")
            audit = path(idx, self.hashes[:tree_size])
            if self.mode == "bad-proof" and audit:
                audit[0] = bytes([audit[0][0] ^ 0x01]) + audit[0][1:]
            return {"leaf_index": idx, "audit_path": [b64(x) for x in audit]}

    def get_entries(self, start, end):
        with self.lock:
            if start < 0 or end < start or start >= len(self.entries):
                raise HttpError(400, "start and end must satisfy 0 <= start <= end, start < tree size")
            end = min(end, len(self.entries) - 1, start + MAX_ENTRIES_PER_GET - 1)
            return {"entries": [{"leaf_input": b64(l), "extra_data": b64(x)}
                                for l, x in self.entries[start:end + 1]]}

    def get_roots(self):
        return {"certificates": [b64(r.public_bytes(serialization.Encoding.DER)) for r in self.roots]}


# ---- DER, just enough to take the poison extension out of a TBSCertificate ----

def der_read(b: bytes, off: int):
    """One TLV at off: (tag, header length, value length)."""
    tag = b[off]
    n = b[off + 1]
    if n < 0x80:
        return tag, 2, n
    k = n & 0x7f
    if k == 0 or k > 4 or off + 2 + k > len(b):
        raise HttpError(400, "precertificate: bad DER length")
    return tag, 2 + k, int.from_bytes(b[off + 2:off + 2 + k], "big")


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_children(b: bytes):
    off, out = 0, []
    while off < len(b):
        _, h, n = der_read(b, off)
        out.append(b[off:off + h + n])
        off += h + n
    if off != len(b):
        raise HttpError(400, "precertificate: bad DER")
    return out


def tbs_without_poison(tbs: bytes) -> bytes:
    """RFC 6962 3.2: the precertificate's TBSCertificate with the poison
    extension removed (extensions [3] is the TBS's last element)."""
    _, h, n = der_read(tbs, 0)
    fields = der_children(tbs[h:h + n])
    ext_tag, eh, en = der_read(fields[-1], 0)
    if ext_tag != 0xa3:
        raise HttpError(400, "precertificate: no extensions")
    _, sh, sn = der_read(fields[-1], eh)
    exts = der_children(fields[-1][eh + sh:eh + sh + sn])
    poison = POISON_OID.dotted_string
    kept = [e for e in exts if x509_ext_oid(e) != poison]
    if len(kept) != len(exts) - 1:
        raise HttpError(400, "precertificate: needs exactly one poison extension")
    seq = b"".join(kept)
    if kept:
        seq = b"\x30" + der_len(len(seq)) + seq
        fields[-1] = b"\xa3" + der_len(len(seq)) + seq
    else:
        fields.pop()
    body = b"".join(fields)
    return b"\x30" + der_len(len(body)) + body


def x509_ext_oid(ext: bytes) -> str:
    """The dotted OID of one DER Extension."""
    _, h, _ = der_read(ext, 0)
    tag, oh, on = der_read(ext, h)
    if tag != 0x06:
        raise HttpError(400, "precertificate: bad extension")
    raw = ext[h + oh:h + oh + on]
    arcs, v = [], 0
    for byte in raw:
        v = (v << 7) | (byte & 0x7f)
        if not byte & 0x80:
            arcs.append(v)
            v = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first] + arcs[1:])


def signed_by(child, parent) -> bool:
    pub = parent.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(child.signature, child.tbs_certificate_bytes,
                       ec.ECDSA(child.signature_hash_algorithm))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(),
                       child.signature_hash_algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def int_param(q, name):
    try:
        return int(q[name][0])
    except (KeyError, IndexError, ValueError):
        raise HttpError(400, f"missing or bad parameter {name}")


class Handler(BaseHTTPRequestHandler):
    log_obj: Log = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("HM_CT_LOG_VERBOSE"):
            sys.stderr.write("ct_log: " + fmt % args + "\n")

    def reply(self, code, obj):
        body = json.dumps(obj).encode() if code == 200 else (str(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if code == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 22:
            raise HttpError(413, "request too large")
        try:
            return json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            raise HttpError(400, "body is not JSON")

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        lg = self.log_obj
        try:
            if url.path == "/ct/v1/get-sth":
                self.reply(200, lg.get_sth())
            elif url.path == "/ct/v1/get-sth-consistency":
                self.reply(200, lg.consistency(int_param(q, "first"), int_param(q, "second")))
            elif url.path == "/ct/v1/get-proof-by-hash":
                try:
                    h = base64.b64decode(q["hash"][0], validate=True)
                except Exception:
                    raise HttpError(400, "missing or bad parameter hash")
                if len(h) != 32:
                    raise HttpError(400, "hash must be 32 bytes")
                self.reply(200, lg.proof_by_hash(h, int_param(q, "tree_size")))
            elif url.path == "/ct/v1/get-entries":
                self.reply(200, lg.get_entries(int_param(q, "start"), int_param(q, "end")))
            elif url.path == "/ct/v1/get-roots":
                self.reply(200, lg.get_roots())
            else:
                raise HttpError(404, "no such endpoint")
        except HttpError as e:
            self.reply(e.code, e)
        except Exception as e:  # a bug or odd input: answer, do not drop the connection
            self.reply(500, f"internal error: {e!r}")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        lg = self.log_obj
        try:
            body = self.body_json()
            if url.path in ("/ct/v1/add-chain", "/ct/v1/add-pre-chain"):
                if not isinstance(body, dict) or not isinstance(body.get("chain"), list):
                    raise HttpError(400, "body must be {\"chain\": [base64 DER, ...]}")
                self.reply(200, lg.add(body["chain"], url.path.endswith("pre-chain")))
            elif url.path == "/ct/test/misbehave":
                mode = body.get("mode") if isinstance(body, dict) else None
                if mode not in MODES:
                    raise HttpError(400, f"mode must be one of {MODES}")
                set_mode(lg, mode)
                self.reply(200, {"mode": mode})
            else:
                raise HttpError(404, "no such endpoint")
        except HttpError as e:
            self.reply(e.code, e)
        except Exception as e:  # a bug or odd input: answer, do not drop the connection
            self.reply(500, f"internal error: {e!r}")


def set_mode(lg, mode):
    lg.mode = mode
    if mode == "fork":
        lg.fork()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--key", required=True, help="the log's ECDSA P-256 private key (PEM)")
    ap.add_argument("--roots", required=True, help="accepted root certificates (PEM)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--misbehave", choices=MODES, default="none")
    a = ap.parse_args()

    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        sys.exit("ct_log: the key must be ECDSA P-256")
    with open(a.roots, "rb") as f:
        roots = load_pem_certs(f.read())
    lg = Log(key, roots)
    set_mode(lg, a.misbehave)
    Handler.log_obj = lg
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{srv.server_address[1]}\n")
        os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


def load_pem_certs(data: bytes):
    marker = b"-----END CERTIFICATE-----"
    certs = []
    for part in data.split(marker)[:-1]:
        certs.append(x509.load_pem_x509_certificate(part + marker))
    return certs


if __name__ == "__main__":
    main()
