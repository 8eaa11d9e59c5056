"""The gateway's verifier remembers verified tokens, but never past expiry or revocation."""

import uuid
from collections.abc import AsyncIterator

import jwt
import pytest
from momentum_gateway.verifier import RememberingVerifier
from momentum_libs.testing.tokens import TestSigner
from momentum_libs.tokens import SessionRevocations, TokenInvalidError
from redis.asyncio import Redis


class CountingKeys:
    def __init__(self, signer: TestSigner) -> None:
        self.signer = signer
        self.calls = 0

    async def __call__(self, kid: str) -> jwt.PyJWK:
        self.calls += 1
        return await self.signer.keys(kid)


@pytest.fixture
async def revocations(redis_url: str) -> AsyncIterator[SessionRevocations]:
    redis = Redis.from_url(redis_url)
    try:
        yield SessionRevocations(redis, keep_seconds=60, prefix=f"test:{uuid.uuid4().hex}:")
    finally:
        await redis.aclose()


def make(
    signer: TestSigner, revocations: SessionRevocations, max_remembered: int = 100
) -> tuple[RememberingVerifier, CountingKeys]:
    keys = CountingKeys(signer)
    verifier = RememberingVerifier(
        keys, signer.issuer, signer.audience, revocations, max_remembered=max_remembered
    )
    return verifier, keys


async def test_a_verified_token_is_not_parsed_again(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, keys = make(signer, revocations)
    token = signer.mint(user_id="u1")
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first == second
    assert first.user_id == "u1"
    assert keys.calls == 1


async def test_revocation_applies_to_a_remembered_token(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, _ = make(signer, revocations)
    token = signer.mint(session_id="s-1")
    await verifier.verify(token)
    await revocations.revoke("s-1")
    with pytest.raises(TokenInvalidError, match="session"):
        await verifier.verify(token)


async def test_an_expired_token_is_never_served_from_memory(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, keys = make(signer, revocations)
    # Expired 2 s ago: still inside the verifier's 5 s leeway, so it passes, but only by
    # a full check each time.
    token = signer.mint(ttl_s=-2)
    await verifier.verify(token)
    await verifier.verify(token)
    assert keys.calls == 2
    with pytest.raises(TokenInvalidError, match="expired"):
        await verifier.verify(signer.mint(ttl_s=-60))


async def test_memory_is_bounded(signer: TestSigner, revocations: SessionRevocations) -> None:
    verifier, keys = make(signer, revocations, max_remembered=2)
    tokens = [signer.mint() for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert keys.calls == 3
    await verifier.verify(tokens[2])  # still remembered
    assert keys.calls == 3
    await verifier.verify(tokens[0])  # pushed out by the third
    assert keys.calls == 4


async def test_a_refused_token_is_not_remembered(
    signer: TestSigner, revocations: SessionRevocations
) -> None:
    verifier, keys = make(signer, revocations)
    forged = signer.mint()[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(TokenInvalidError):
            await verifier.verify(forged)
    assert keys.calls == 2
