"""The pair a refresh token was rotated into, sealed with a key only that token gives.

A client that lost the response to its refresh presents the same token again; within the
grace it gets the same pair back. Storing that pair in clear would put a live refresh
token at rest, so it is encrypted (AES-GCM) under a key derived from the *old* token,
which the database never holds (it keeps only the token's SHA-256): whoever can unseal it
could have refreshed anyway.
"""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from momentum_auth.tokens.schemas import TokenPair

# A context of its own, so the key is never the token's stored SHA-256 (its id).
_KEY_CONTEXT = b"momentum refresh-token grace v1"
_NONCE_BYTES = 12


def _key(refresh_token: str) -> bytes:
    return hmac.new(refresh_token.encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def seal(refresh_token: str, pair: TokenPair) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(_key(refresh_token)).encrypt(nonce, pair.model_dump_json().encode(), None)


def unseal(refresh_token: str, sealed: bytes) -> TokenPair | None:
    """The pair, or None if ``sealed`` was not made with this token (or was altered)."""
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        plain = AESGCM(_key(refresh_token)).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        return None
    return TokenPair.model_validate_json(plain)
