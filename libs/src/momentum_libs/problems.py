"""RFC 9457 problem details: every error a client sees has this one shape."""

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://momentum.example/problems/"

log = structlog.get_logger(__name__)


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type_slug = type_slug
        self.title = title
        self.headers = headers
        self.extra = extra or {}

    def response(self) -> JSONResponse:
        return problem_response(
            self.status,
            self.detail,
            type_slug=self.type_slug,
            title=self.title,
            headers=self.headers,
            extra=self.extra,
        )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _slug(status: int) -> str:
    return _title(status).lower().replace(" ", "-").replace("'", "")


def conflict() -> ProblemError:
    """A guarded write that lost its race every time the retry policy allows (retry.py)."""
    return ProblemError(
        409, "The resource kept changing while this request tried to write it; try again."
    )


def validation_problem(loc: list[str | int], msg: str) -> ProblemError:
    """A 422 for a rule a schema cannot say, shaped like FastAPI's own validation errors."""
    return ProblemError(
        422,
        f"The request is not valid: {'.'.join(str(p) for p in loc)}: {msg}",
        type_slug="validation-error",
        extra={"errors": [{"loc": loc, "msg": msg, "type": "value_error"}]},
    )


def problem_body(
    status: int,
    detail: str,
    *,
    type_slug: str | None = None,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (type_slug or _slug(status)),
        "title": title or _title(status),
        "status": status,
        "detail": detail,
    }
    body.update(extra or {})
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    type_slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, type_slug=type_slug, title=title, extra=extra),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Keep only what a client needs; never echo back the input (it may be a password)."""
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in errors
    ]


def _http_detail(status: int, detail: Any) -> str:
    if status == 404 and detail == "Not Found":
        return "No resource at this path."
    if status == 405 and detail == "Method Not Allowed":
        return "This method is not allowed on this path."
    return str(detail)


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return exc.response()


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route answers at this path (Starlette names only the first route's).

    Each method is tried against the routes: FastAPI nests included routers, so the
    routes' own method sets are not all at hand.
    """
    routes = request.app.router.routes
    return {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }


# FastAPI's answer when a body cannot even be decoded (invalid UTF-8, nesting past the
# recursion limit); any other broken JSON is its 422 `json_invalid`.
_BODY_NOT_PARSED = "There was an error parsing the body"


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_NOT_PARSED:
        # One kind of error, one status (the documented 422), whatever broke the JSON.
        invalid = {"loc": ("body",), "msg": "The body is not valid JSON.", "type": "json_invalid"}
        return await _on_validation(request, RequestValidationError([invalid]))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return problem_response(
        exc.status_code,
        _http_detail(exc.status_code, exc.detail),
        headers=headers,
    )


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    first = errors[0] if errors else None
    detail = "The request is not valid."
    if first is not None:
        where = ".".join(str(part) for part in first["loc"])
        detail = f"The request is not valid: {where}: {first['msg']}"
    return problem_response(422, detail, type_slug="validation-error", extra={"errors": errors})


def unexpected_error_response() -> JSONResponse:
    """The 500 a client sees for a bug: no trace, no exception text (they go to our log)."""
    return problem_response(500, "An unexpected error occurred. It has been logged.")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to our log, never to the client.
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return unexpected_error_response()


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # MongoDB unreachable (server selection timed out, connection lost): the request may
    # succeed on retry, so 503 + Retry-After, not a 500. No host name reaches the client.
    log.warning(
        "store_unavailable",
        store="mongodb",
        error=type(exc).__name__,
        path=request.url.path,
        method=request.method,
    )
    return problem_response(
        503, "The data store is unavailable; try again shortly.", headers={"Retry-After": "5"}
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(ConnectionFailure, _on_store_unavailable)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error response."""

    model_config = ConfigDict(
        # Some problems carry more members (``errors``, a limit, …).
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_TYPE_BASE + "not-found",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "Goal not found.",
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="The status's reason phrase, or the kind's own title")
    status: int = Field(description="The HTTP status code, repeated")
    detail: str = Field(description="What went wrong with this request, for a person")


class FieldError(BaseModel):
    """One reason a request is not valid."""

    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field's path"
    )
    msg: str
    type: str = Field(description="A machine-readable error kind, such as `missing`")


class ValidationProblem(Problem):
    """A 422: the problem plus every reason the request is not valid."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_TYPE_BASE + "validation-error",
                    "title": _title(422),
                    "status": 422,
                    "detail": "The request is not valid: body.title: Field required",
                    "errors": [
                        {"loc": ["body", "title"], "msg": "Field required", "type": "missing"}
                    ],
                }
            ]
        }
    )

    errors: list[FieldError]


def problem_schemas(ref_template: str) -> dict[str, Any]:
    """The JSON schemas of :class:`Problem`, :class:`ValidationProblem` and what they use."""
    _, top = models_json_schema(
        [(Problem, "serialization"), (ValidationProblem, "serialization")],
        ref_template=ref_template,
    )
    schemas: dict[str, Any] = top["$defs"]
    return schemas


PROBLEM_RESPONSE_SCHEMA: dict[str, Any] = {
    "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema(mode="serialization")}}
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem+json errors a route can answer."""
    return {
        status: {"description": _title(status), **PROBLEM_RESPONSE_SCHEMA} for status in statuses
    }
