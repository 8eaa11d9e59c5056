from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from momentum_auth.users.schemas import normalize_email

# Login takes any string: a malformed address is simply not an account (401, not 422).
LoginEmail = Annotated[str, StringConstraints(min_length=1, max_length=320)]
LoginPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "correct horse battery"}]
        },
    )

    email: LoginEmail
    password: LoginPassword

    @property
    def normalized_email(self) -> str:
        return normalize_email(self.email)


class LoginForm(BaseModel):
    """OAuth2 password-grant form (Swagger's "Authorize"); other form fields are ignored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"username": "ada@example.com", "password": "correct horse battery"}]
        }
    )

    username: LoginEmail
    password: LoginPassword


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"refresh_token": "rt_3q2-7wQm0b1d9sXo"}]}
    )

    refresh_token: OpaqueToken


class TokenPair(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI2NjVmIn0.c2ln",
                    "refresh_token": "rt_3q2-7wQm0b1d9sXo",
                    "token_type": "bearer",
                    "expires_in": 900,
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
