"""TLS material and the bearer token of a sandbox cluster.

A real cluster hands its users three things: the API server URL, the CA that signed
the server certificate, and a credential. The sandbox produces the same three so that
kubectl and the official client connect exactly as they would to a real cluster
(no ``insecure-skip-tls-verify``).

Design choices:
* ECDSA P-256 keys: generating them takes microseconds, RSA-2048 takes ~50 ms per key,
  and both kubectl (Go) and Python's ssl accept them.
* Material is written into the state dir and *reused* on restart, so a restarted
  sandbox is still trusted by kubeconfigs and by MAE's stored cluster credentials.
* The token looks like a ServiceAccount token (a JWT signed with the CA key) because
  MAE stores and displays ServiceAccount tokens; the sandbox only ever compares it
  byte-for-byte, it does not verify signatures.
"""
from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
TOKEN_FILE = "token"


@dataclass
class TLSFiles:
    ca_cert: str
    server_cert: str
    server_key: str


def _write(path: str, data: bytes, private: bool = False) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _make_ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sandbox-{name}-ca")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(hours=1))
        .not_valid_after(now + _dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server(name: str, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sandbox-{name}-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(hours=1))
        .not_valid_after(now + _dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_tls(state_dir: str, name: str) -> TLSFiles:
    """Return the TLS files in *state_dir*, creating any that are missing."""
    files = TLSFiles(
        ca_cert=os.path.join(state_dir, CA_CERT),
        server_cert=os.path.join(state_dir, SERVER_CERT),
        server_key=os.path.join(state_dir, SERVER_KEY),
    )
    ca_key_path = os.path.join(state_dir, CA_KEY)
    if all(os.path.exists(p) for p in (files.ca_cert, files.server_cert, files.server_key, ca_key_path)):
        return files
    if os.path.exists(files.ca_cert) and os.path.exists(ca_key_path):
        with open(ca_key_path, "rb") as fh:
            ca_key = serialization.load_pem_private_key(fh.read(), None)
        with open(files.ca_cert, "rb") as fh:
            ca_cert = x509.load_pem_x509_certificate(fh.read())
    else:
        ca_key, ca_cert = _make_ca(name)
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    key, cert = _make_server(name, ca_key, ca_cert)
    _write(files.server_key, _key_pem(key), private=True)
    _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(state_dir: str, name: str) -> str:
    """A ServiceAccount-shaped JWT (ES256, signed by the sandbox CA key)."""
    with open(os.path.join(state_dir, CA_KEY), "rb") as fh:
        ca_key = serialization.load_pem_private_key(fh.read(), None)
    header = {"alg": "ES256", "kid": secrets.token_hex(8)}
    claims = {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "kube-system",
        "kubernetes.io/serviceaccount/secret.name": "mae-admin-token",
        "kubernetes.io/serviceaccount/service-account.name": "mae-admin",
        "kubernetes.io/serviceaccount/service-account.uid": secrets.token_hex(16),
        "sub": "system:serviceaccount:kube-system:mae-admin",
        "sandbox": name,
        "jti": secrets.token_hex(16),
    }
    signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    der = ca_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + _b64url(sig)


def ensure_token(state_dir: str, name: str, given: str | None) -> str:
    """The token in force: *given* wins (and is persisted), else the stored one, else a new one."""
    path = os.path.join(state_dir, TOKEN_FILE)
    if given:
        token = given
    elif os.path.exists(path):
        with open(path) as fh:
            token = fh.read().strip()
    else:
        token = make_token(state_dir, name)
    _write(path, token.encode(), private=True)
    return token
