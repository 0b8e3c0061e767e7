#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Test certificates for HyperMesh's CT tests, made at test time (nothing that
expires is committed).

  certfactory.py init DIR
      a root CA and an intermediate CA (ECDSA P-256), and the keys of two CT
      logs: log A (the one the cluster trusts) and log B (one it does not know).
      Writes root.pem, int.pem, log_a.key.pem, log_a.pub.pem, log_b.key.pem,
      log_b.pub.pem (and the CA keys), and valid.key.pem, the key the valid
      leaf will have (so a DANE TLSA record over its SubjectPublicKeyInfo can
      be published and signed before the certificate is issued).

  certfactory.py issue DIR --log-a URL --log-b URL
      leaf certificates issued by the intermediate, each written as a chain
      (leaf, intermediate) in DIR/NAME.chain.pem:
        valid        precertificate sent to log A with add-pre-chain, the final
                     certificate carries log A's SCT in the embedded SCT list
        unknown_log  the same with log B's SCT
        bad_sct      log A's SCT with one byte of its signature changed
        no_sct       no SCT list at all (and sent to log A with add-chain, so
                     the log holds it as an x509_entry)
      Also writes DIR/NAME.sct.json, the log's add-(pre-)chain answer.
"""
import argparse
import base64
import datetime
import json
import os
import struct
import sys
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HyperMesh test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_key(path, key):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def write_pub(path, key):
    with open(path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def read_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def read_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def ca_cert(subject, key, issuer, issuer_key, path_len, days=30):
    t = now()
    return (x509.CertificateBuilder()
            .subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(hours=1))
            .not_valid_after(t + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def init(d):
    os.makedirs(d, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    root = ca_cert("HyperMesh test root", root_key, "HyperMesh test root", root_key, None)
    inter = ca_cert("HyperMesh test intermediate", int_key, "HyperMesh test root", root_key, 0)
    write_key(f"{d}/root.key.pem", root_key)
    write_key(f"{d}/int.key.pem", int_key)
    with open(f"{d}/root.pem", "wb") as f:
        f.write(pem(root))
    with open(f"{d}/int.pem", "wb") as f:
        f.write(pem(inter))
    for log in ("log_a", "log_b"):
        k = ec.generate_private_key(ec.SECP256R1())
        write_key(f"{d}/{log}.key.pem", k)
        write_pub(f"{d}/{log}.pub.pem", k)
    write_key(f"{d}/valid.key.pem", ec.generate_private_key(ec.SECP256R1()))


def leaf_builder(dns, serial, key, inter, t):
    """Everything but the last extension, so the precertificate and the
    final certificate share one TBSCertificate but for that extension.  The
    time t is the caller's, taken once: a second boundary passing during the
    add-pre-chain round trip would otherwise give the final certificate
    other validity dates than the logged precertificate (an SCT that does
    not verify, a leaf the log does not hold)."""
    return (x509.CertificateBuilder()
            .subject_name(name(dns)).issuer_name(inter.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(t - datetime.timedelta(hours=1))
            .not_valid_after(t + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False))


def post(url, path, chain):
    body = json.dumps({"chain": [base64.b64encode(der(c)).decode() for c in chain]}).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def serialize_sct(resp, corrupt=False):
    """RFC 6962 3.2/3.3: the SCT as it is put in the SCT list."""
    sig = bytearray(base64.b64decode(resp["signature"]))
    if corrupt:
        sig[-1] ^= 0x01  # inside the ECDSA signature's s value
    ext = base64.b64decode(resp["extensions"])
    return (struct.pack(">B", resp["sct_version"]) + base64.b64decode(resp["id"]) +
            struct.pack(">Q", resp["timestamp"]) + struct.pack(">H", len(ext)) + ext + bytes(sig))


def der_octet_string(b):
    n = len(b)
    if n < 0x80:
        hdr = bytes([n])
    elif n < 0x100:
        hdr = bytes([0x81, n])
    else:
        hdr = bytes([0x82, n >> 8, n & 0xff])
    return b"\x04" + hdr + b


def sct_list_extension(scts):
    body = b"".join(struct.pack(">H", len(s)) + s for s in scts)
    return x509.UnrecognizedExtension(SCT_LIST_OID, der_octet_string(struct.pack(">H", len(body)) + body))


def issue(d, log_a, log_b):
    root, inter = read_cert(f"{d}/root.pem"), read_cert(f"{d}/int.pem")
    int_key = read_key(f"{d}/int.key.pem")
    variants = (("valid", log_a, False), ("unknown_log", log_b, False), ("bad_sct", log_a, True))
    for vname, url, corrupt in variants:
        kpath = f"{d}/{vname}.key.pem"
        key = read_key(kpath) if os.path.exists(kpath) else ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        dns = f"{vname.replace('_', '-')}.hypermesh.test"
        t = now()
        pre = (leaf_builder(dns, serial, key, inter, t)
               .add_extension(x509.PrecertPoison(), critical=True)
               .sign(int_key, hashes.SHA256()))
        resp = post(url, "/ct/v1/add-pre-chain", [pre, inter, root])
        final = (leaf_builder(dns, serial, key, inter, t)
                 .add_extension(sct_list_extension([serialize_sct(resp, corrupt)]), critical=False)
                 .sign(int_key, hashes.SHA256()))
        write_chain(d, vname, final, inter, resp)
    key = ec.generate_private_key(ec.SECP256R1())
    plain = leaf_builder("no-sct.hypermesh.test", x509.random_serial_number(), key, inter, now()) \
        .sign(int_key, hashes.SHA256())
    resp = post(log_a, "/ct/v1/add-chain", [plain, inter, root])
    write_chain(d, "no_sct", plain, inter, resp)


def write_chain(d, vname, leaf, inter, resp):
    with open(f"{d}/{vname}.chain.pem", "wb") as f:
        f.write(pem(leaf) + pem(inter))
    with open(f"{d}/{vname}.sct.json", "w") as f:
        json.dump(resp, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init")
    p.add_argument("dir")
    p = sub.add_parser("issue")
    p.add_argument("dir")
    p.add_argument("--log-a", required=True)
    p.add_argument("--log-b", required=True)
    a = ap.parse_args()
    if a.cmd == "init":
        init(a.dir)
    else:
        try:
            issue(a.dir, a.log_a, a.log_b)
        except urllib.error.HTTPError as e:
            sys.exit(f"certfactory: the log refused: {e.code} {e.read().decode(errors='replace')}")


if __name__ == "__main__":
    main()
