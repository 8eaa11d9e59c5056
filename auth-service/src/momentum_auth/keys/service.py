"""The Ed25519 key that signs access tokens, and its public half as a JWKS.

Production takes the key from settings (a PEM file or the PEM itself) and refuses to
start without one (see ``AuthSettings``). Development creates a key pair on first start
under ``data_dir/keys`` (mode 0600) and reuses it afterwards, so tokens survive restarts.

Rotation: sign with the new key and list the old one's public key in
``retired_public_keys_file``; the JWKS serves both, so access tokens the old key signed
keep verifying until they expire (at most ``access_token_ttl_seconds``, plus the
verifiers' JWKS cache). Then drop it from the file.
"""

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from momentum_libs.tokens import StaticKeys

from momentum_auth.settings import AuthSettings

ALGORITHM = "EdDSA"
DEV_KEY_FILENAME = "ed25519-signing-key.pem"


class KeyConfigurationError(RuntimeError):
    """The configured signing key cannot be used; the service must not start."""


def _public_jwk(key: Ed25519PublicKey, kid: str | None = None) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key))
    jwk.update({"kid": kid or _thumbprint(jwk), "alg": ALGORITHM, "use": "sig"})
    return jwk


class SigningKey:
    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        kid: str | None = None,
        retired: list[Ed25519PublicKey] | None = None,
    ) -> None:
        self._private_key = private_key
        self.public_jwk = _public_jwk(private_key.public_key(), kid)
        self.kid: str = self.public_jwk["kid"]
        old = [_public_jwk(key) for key in retired or []]
        self.retired_jwks = [jwk for jwk in old if jwk["kid"] != self.kid]

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [dict(jwk) for jwk in (self.public_jwk, *self.retired_jwks)]}

    def verifier_keys(self) -> StaticKeys:
        return StaticKeys(
            {jwk["kid"]: jwt.PyJWK(jwk) for jwk in (*self.retired_jwks, self.public_jwk)}
        )


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an OKP key: a kid that changes whenever the key does."""
    canonical = json.dumps(
        {"crv": public_jwk["crv"], "kty": public_jwk["kty"], "x": public_jwk["x"]},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical)
    return jwt.utils.base64url_encode(digest.finalize()).decode()


def _parse_pem(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigurationError(f"{source} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigurationError(f"{source} is not an Ed25519 key")
    return key


def _parse_public_pems(text: str, source: str) -> list[Ed25519PublicKey]:
    marker = "-----BEGIN PUBLIC KEY-----"
    blocks = [marker + block for block in text.split(marker)[1:]]
    if not blocks:
        raise KeyConfigurationError(f"{source} holds no PEM public key")
    keys = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block.strip().encode())
        except (ValueError, TypeError) as exc:
            raise KeyConfigurationError(f"{source} holds a key that is not PEM") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyConfigurationError(f"{source} holds a key that is not Ed25519")
        keys.append(key)
    return keys


def _retired_keys(settings: AuthSettings) -> list[Ed25519PublicKey]:
    path = settings.retired_public_keys_file
    if path is None:
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeError) as exc:
        raise KeyConfigurationError(
            "MOMENTUM_AUTH_RETIRED_PUBLIC_KEYS_FILE cannot be read"
        ) from exc
    return _parse_public_pems(text, "MOMENTUM_AUTH_RETIRED_PUBLIC_KEYS_FILE")


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_or_create_dev_key(directory: Path) -> Ed25519PrivateKey:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / DEV_KEY_FILENAME
    if path.exists():
        return _parse_pem(path.read_bytes(), str(path))
    key = Ed25519PrivateKey.generate()
    # Write aside with 0600, then link into place: two workers starting at once agree
    # on one key, and nobody ever reads a half-written file.
    tmp = directory / f".{DEV_KEY_FILENAME}.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_private_pem(key))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _parse_pem(path.read_bytes(), str(path))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def load_signing_key(settings: AuthSettings) -> SigningKey:
    if settings.signing_key_pem is not None:
        key = _parse_pem(
            settings.signing_key_pem.get_secret_value().encode(), "MOMENTUM_AUTH_SIGNING_KEY_PEM"
        )
    elif settings.signing_key_file is not None:
        try:
            pem = settings.signing_key_file.read_bytes()
        except OSError as exc:
            raise KeyConfigurationError("MOMENTUM_AUTH_SIGNING_KEY_FILE cannot be read") from exc
        key = _parse_pem(pem, "MOMENTUM_AUTH_SIGNING_KEY_FILE")
    elif settings.is_production:
        raise KeyConfigurationError("production refuses to start without a signing key")
    else:
        key = _load_or_create_dev_key(settings.data_dir / "keys")
    return SigningKey(key, settings.signing_key_id, _retired_keys(settings))
