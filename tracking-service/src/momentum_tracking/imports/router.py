"""/imports: a Momentum export, a CSV of logs, or Loop Habit Tracker's export, merged in."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from momentum_libs.problems import ProblemError, problem_responses

from momentum_tracking.deps import CurrentUser, Imports, Settings
from momentum_tracking.imports.parse import ImportData, loop_zip, momentum_json, simple_csv
from momentum_tracking.imports.schemas import ImportReport

router = APIRouter(prefix="/imports", tags=["imports"])

MEDIA_TYPES = ("application/json", "text/csv", "application/zip")
_BODY = {
    "requestBody": {
        "required": True,
        # text/csv and application/zip (Loop's export) are read too, but not declared:
        # openapi-python-client cannot type a text/csv body (it warns and drops the
        # operation's body), and schemathesis has no serializer for zip.
        "description": "A Momentum JSON export (`application/json`), a CSV of "
        "`date,minutes,goal,note` (`text/csv`), or Loop Habit Tracker's CSV export zip "
        "(`application/zip`, sent with that `Content-Type`).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "examples": [{"format": "momentum-export", "version": 1, "goals": []}],
                }
            },
        },
    }
}


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``max_bytes`` (never all read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ProblemError(413, f"An import file may be at most {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(media_type: str, content: bytes, max_bytes: int, minutes_per_check: int) -> ImportData:
    if media_type == "application/json":
        return momentum_json(content)
    if media_type == "text/csv":
        return simple_csv(content)
    return loop_zip(content, max_bytes, minutes_per_check)


@router.post(
    "",
    operation_id="importData",
    summary="Merge a file's goals, weekly targets and daily logs into the user's",
    description="Matched records that are the same are skipped as duplicates, so the same "
    "file imported twice changes nothing. `dry_run=true` reports without writing.",
    openapi_extra=_BODY,
    responses=problem_responses(401, 413, 415, 422, 503),
)
async def import_data(
    request: Request,
    user: CurrentUser,
    imports: Imports,
    settings: Settings,
    dry_run: Annotated[bool, Query(description="Report what would change; write nothing")] = False,
    mode: Annotated[
        Literal["merge"], Query(description="How records meet the user's (merge: matched)")
    ] = "merge",
    minutes_per_check: Annotated[
        int, Query(ge=1, le=1440, description="Loop Habit Tracker: minutes of a checked day")
    ] = 1,
) -> ImportReport:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise ProblemError(
            415, f"An import is one of {', '.join(MEDIA_TYPES)}; not {media_type!r}."
        )
    max_bytes = settings.import_max_bytes
    content = await _read_capped(request, max_bytes)
    data = _parse(media_type, content, max_bytes, minutes_per_check)
    report = await imports.run(user.user_id, data, dry_run)
    return ImportReport.model_validate(report.as_dict())
