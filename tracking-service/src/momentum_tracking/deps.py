"""FastAPI dependencies of this service, as ``Annotated`` aliases."""

from typing import Annotated, cast

from fastapi import Depends, Request
from momentum_libs.deps import CurrentUser
from momentum_libs.state import service_state

from momentum_tracking.batch.service import BatchService
from momentum_tracking.breaks.service import BreakService
from momentum_tracking.changes.service import ChangeService
from momentum_tracking.erasure.service import ErasureService
from momentum_tracking.exports.service import ExportService
from momentum_tracking.goals.service import GoalService
from momentum_tracking.imports.service import ImportService
from momentum_tracking.logs.service import LogService
from momentum_tracking.settings import TrackingSettings
from momentum_tracking.state import TrackingState
from momentum_tracking.targets.service import TargetService


def _state(request: Request) -> TrackingState:
    return cast(TrackingState, service_state(request))


async def _goals(request: Request) -> GoalService:
    return _state(request).goals


async def _targets(request: Request) -> TargetService:
    return _state(request).targets


async def _logs(request: Request) -> LogService:
    return _state(request).logs


async def _breaks(request: Request) -> BreakService:
    return _state(request).breaks


async def _changes(request: Request) -> ChangeService:
    return _state(request).changes


async def _batch(request: Request) -> BatchService:
    return _state(request).batch


async def _erasure(request: Request) -> ErasureService:
    return _state(request).erasure


async def _exports(request: Request) -> ExportService:
    return _state(request).exports


async def _imports(request: Request) -> ImportService:
    return _state(request).imports


async def _settings(request: Request) -> TrackingSettings:
    return _state(request).settings


Goals = Annotated[GoalService, Depends(_goals)]
Targets = Annotated[TargetService, Depends(_targets)]
Logs = Annotated[LogService, Depends(_logs)]
Breaks = Annotated[BreakService, Depends(_breaks)]
Batch = Annotated[BatchService, Depends(_batch)]
Changes = Annotated[ChangeService, Depends(_changes)]
Erasure = Annotated[ErasureService, Depends(_erasure)]
Exports = Annotated[ExportService, Depends(_exports)]
Imports = Annotated[ImportService, Depends(_imports)]
Settings = Annotated[TrackingSettings, Depends(_settings)]

__all__ = [
    "Batch",
    "Breaks",
    "Changes",
    "CurrentUser",
    "Erasure",
    "Exports",
    "Goals",
    "Imports",
    "Logs",
    "Settings",
    "Targets",
]
