"""What auth-service's lifespan builds, typed: the base's stores and verifier, and its own."""

from dataclasses import dataclass

from fastapi import Request
from momentum_libs.consumer import StreamConsumer
from momentum_libs.expiry import Expiries
from momentum_libs.partitioned import LogConsumer
from momentum_libs.relay import OutboxRelay
from momentum_libs.state import ServiceState, service_state

from momentum_auth.keys.service import SigningKey
from momentum_auth.settings import AuthSettings
from momentum_auth.tokens.service import TokenService
from momentum_auth.users.service import UserService


@dataclass(kw_only=True)
class AuthState(ServiceState):
    settings: AuthSettings
    signing_key: SigningKey
    relay: OutboxRelay
    consumer: LogConsumer  # user.settings_imported
    # dead letters replayed to this group alone (a partitioned consumer reads its own)
    replay_consumer: StreamConsumer | None
    expiries: Expiries  # the TTL indexes (swept by us on the embedded server)
    users: UserService
    tokens: TokenService


def auth_state(request: Request) -> AuthState:
    state = service_state(request)
    assert isinstance(state, AuthState)  # auth's lifespan installs nothing else
    return state
