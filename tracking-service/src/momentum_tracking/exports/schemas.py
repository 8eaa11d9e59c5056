from momentum_libs.timestamps import Timestamp
from pydantic import BaseModel, ConfigDict

from momentum_tracking.exports.models import Export, ExportFormat, ExportStatus


class ExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"format": "json"}]})

    format: ExportFormat


class ExportAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "3f2b9c0e7d1a4e8b9c6d5a4b3c2d1e0f", "status": "pending"}]
        }
    )

    id: str
    status: ExportStatus


class ExportRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2b9c0e7d1a4e8b9c6d5a4b3c2d1e0f",
                    "format": "json",
                    "status": "ready",
                    "percent": 100,
                    "download_url": "/exports/3f2b9c0e7d1a4e8b9c6d5a4b3c2d1e0f/download",
                    "expires_at": "2026-12-03T09:30:00Z",
                }
            ]
        }
    )

    id: str
    format: ExportFormat
    status: ExportStatus
    percent: int
    download_url: str | None
    expires_at: Timestamp

    @classmethod
    def from_document(cls, export: Export) -> "ExportRead":
        ready = export.status == "ready"
        return cls(
            id=export.id,
            format=export.format,
            status=export.status,
            percent=export.percent,
            download_url=f"/exports/{export.id}/download" if ready else None,
            expires_at=export.expires_at,
        )
