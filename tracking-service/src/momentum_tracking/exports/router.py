"""/exports: a copy of everything the user stored, built in the background."""

from fastapi import APIRouter, Response
from momentum_libs.problems import problem_responses

from momentum_tracking.deps import CurrentUser, Exports
from momentum_tracking.exports.schemas import ExportAccepted, ExportCreate, ExportRead

router = APIRouter(prefix="/exports", tags=["exports"])


@router.post(
    "",
    operation_id="createExport",
    status_code=202,
    summary="Start an export of all the user's data (JSON, or a zip of CSV files)",
    responses=problem_responses(401, 422, 503),
)
async def create_export(body: ExportCreate, user: CurrentUser, exports: Exports) -> ExportAccepted:
    export = await exports.start(user.user_id, body.format)
    return ExportAccepted(id=export.id, status=export.status)


@router.get(
    "/{export_id}",
    operation_id="getExport",
    summary="An export's progress, and where to download it once ready",
    responses=problem_responses(401, 404, 503),
)
async def get_export(export_id: str, user: CurrentUser, exports: Exports) -> ExportRead:
    return ExportRead.from_document(await exports.get(user.user_id, export_id))


@router.get(
    "/{export_id}/download",
    operation_id="downloadExport",
    summary="The export's file (the user's alone); 404 until it is ready",
    response_class=Response,
    responses={
        200: {
            "description": "The file: JSON, or a zip of CSV files",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "examples": [{"format": "momentum-export"}]}
                },
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(401, 404, 503),
    },
)
async def download_export(export_id: str, user: CurrentUser, exports: Exports) -> Response:
    content, media_type = await exports.download(user.user_id, export_id)
    extension = "json" if media_type == "application/json" else "zip"
    disposition = f'attachment; filename="momentum-export-{export_id}.{extension}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})
