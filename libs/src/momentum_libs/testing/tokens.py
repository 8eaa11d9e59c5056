"""A signer for tests: mints access tokens the real verifier accepts (or, on request, not)."""

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from momentum_libs.tokens import StaticKeys


class TestSigner:
    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str = "momentum-auth", audience: str = "momentum") -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = uuid.uuid4().hex[:12]
        self.private_key = Ed25519PrivateKey.generate()
        public_jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        public_jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        self.jwks: dict[str, Any] = {"keys": [public_jwk]}
        self.keys = StaticKeys({self.kid: jwt.PyJWK(public_jwk)})

    def mint(
        self,
        user_id: str | None = None,
        session_id: str | None = None,
        *,
        ttl_s: int = 900,
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id or uuid.uuid4().hex,
            "sid": session_id or uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ttl_s,
            "token_use": "access",
        }
        claims.update(overrides)
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid})
