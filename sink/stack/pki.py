"""A throwaway certificate authority for the secured local stack, made with the ``openssl``
command line (no Python dependency): one CA, one server certificate valid only for
``127.0.0.1`` (so ``localhost`` is a hostname mismatch the tests can provoke), client
certificates by common name, and a second, unrelated CA (an untrusted issuer)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sink.stack.process import StackError

DAYS = "30"
JWT_KID = "warp-test-issuer"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path, data: bytes | None = None) -> bytes:
    exe = shutil.which("openssl")
    if exe is None:
        raise StackError("openssl not found; install it: apt-get install -y openssl")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, check=False, timeout=60,
                          input=data)
    if proc.returncode != 0:
        raise StackError(f"openssl {args[0]} failed: {proc.stderr.decode()[-600:]}")
    return proc.stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Pair:
    """A certificate and its unencrypted private key (PEM files)."""

    cert: Path
    key: Path


class Pki:
    """The CA and certificates under ``root`` (made once; later calls reuse the files)."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        self.ca = root / "ca.pem"
        self.ca_key = root / "ca.key"
        self.rogue_ca = root / "rogue-ca.pem"
        self.issuer_key = root / "oauth-issuer.key"
        self.jwks = root / "jwks.json"

    def _ca(self, name: str, cn: str) -> None:
        _openssl("req", "-x509", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
                 "-days", DAYS, "-subj", f"/CN={cn}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.ca.is_file():
            self._ca("ca", "cartridge-warp test CA")
        if not self.rogue_ca.is_file():
            self._ca("rogue-ca", "cartridge-warp untrusted CA")

    def issue(self, name: str, cn: str, *, server: bool, expired: bool = False) -> Pair:
        """``name.pem``/``name.key`` signed by the CA: a server certificate for the IP
        127.0.0.1 only, or a client certificate whose CN is the login (Kafka principal,
        PostgreSQL role); ``expired``: one that expired yesterday."""
        pair = Pair(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        if pair.cert.is_file() and pair.key.is_file():
            return pair
        ext = self.dir / f"{name}.ext"
        usage = ("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" if server
                 else "extendedKeyUsage=clientAuth\n")
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" + usage)
        _openssl("req", *_EC, "-keyout", pair.key.name, "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "-1" if expired else DAYS, "-out", pair.cert.name,
                 "-extfile", ext.name, cwd=self.dir)
        pair.key.chmod(0o600)
        return pair

    def pkcs12(self, pair: Pair, password: str) -> Path:
        """The pair and the CA as a PKCS#12 keystore (what the Kafka broker reads)."""
        out = pair.cert.with_suffix(".p12")
        if not out.is_file():
            _openssl("pkcs12", "-export", "-in", pair.cert.name, "-inkey", pair.key.name,
                     "-certfile", "ca.pem", "-out", out.name, "-passout", f"pass:{password}",
                     cwd=self.dir)
        return out

    def oauth_issuer(self) -> Path:
        """An RS256 token issuer: its key, and ``jwks.json`` (what a broker validates OAuth
        tokens against). Returns the JWKS file."""
        if not self.issuer_key.is_file():
            _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                     "-out", self.issuer_key.name, cwd=self.dir)
            self.issuer_key.chmod(0o600)
        if not self.jwks.is_file():
            out = _openssl("rsa", "-in", self.issuer_key.name, "-noout", "-modulus", cwd=self.dir)
            modulus = bytes.fromhex(out.decode().strip().split("=", 1)[1])
            key = {"kty": "RSA", "kid": JWT_KID, "use": "sig", "alg": "RS256",
                   "n": _b64url(modulus), "e": _b64url((65537).to_bytes(3, "big"))}
            self.jwks.write_text(json.dumps({"keys": [key]}))
        return self.jwks

    def jwt(self, claims: dict[str, object]) -> str:
        """``claims`` as a JWT signed by the issuer (RS256)."""
        self.oauth_issuer()
        header = {"alg": "RS256", "typ": "JWT", "kid": JWT_KID}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode()))
        signature = _openssl("dgst", "-sha256", "-sign", self.issuer_key.name, cwd=self.dir,
                             data=signing_input.encode())
        return f"{signing_input}.{_b64url(signature)}"
