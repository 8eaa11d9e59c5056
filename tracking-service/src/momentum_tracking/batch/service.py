"""``POST /batch``: each op goes through the same service call as its single request
(PUT, PATCH or DELETE of that resource), so every rule holds and nothing is written a
second way. Ops run in order, each atomic on its own (one document write, or the goal's
cascade); one failing is answered in its result and does not stop the next.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from momentum_libs.conditional import IfMatch
from momentum_libs.outbox import OutboxDocument, entity_tag
from momentum_libs.problems import ProblemError, problem_body, validation_errors
from pydantic import BaseModel, ValidationError

from momentum_tracking.batch.schemas import BatchOp, BatchResult, BatchType
from momentum_tracking.erasure.service import ErasureService
from momentum_tracking.goals.schemas import GoalCreate, GoalRead, GoalUpdate
from momentum_tracking.goals.service import GoalService
from momentum_tracking.logs.schemas import LogCreate, LogRead, LogUpdate
from momentum_tracking.logs.service import LogService
from momentum_tracking.targets.schemas import TargetCreate, TargetRead, TargetUpdate
from momentum_tracking.targets.service import TargetService

Put = Callable[[str, str, Any, IfMatch | None], Awaitable[tuple[Any, bool]]]
Patch = Callable[[str, str, Any, IfMatch | None], Awaitable[Any]]
Delete = Callable[[str, str, IfMatch | None], Awaitable[None]]


@dataclass(frozen=True)
class Kind:
    """One resource type's schemas and the service calls of its single requests."""

    create: type[BaseModel]
    update: type[BaseModel]
    read: Any
    put: Put
    patch: Patch
    delete: Delete


class BatchService:
    def __init__(
        self,
        goals: GoalService,
        targets: TargetService,
        logs: LogService,
        erasure: ErasureService,
    ) -> None:
        self._kinds: dict[BatchType, Kind] = {
            "goal": Kind(
                GoalCreate, GoalUpdate, GoalRead, goals.put, goals.update, erasure.erase_goal
            ),
            "weekly_target": Kind(
                TargetCreate, TargetUpdate, TargetRead, targets.put, targets.update, targets.delete
            ),
            "daily_log": Kind(LogCreate, LogUpdate, LogRead, logs.put, logs.update, logs.delete),
        }

    async def apply(self, user_id: str, ops: list[BatchOp]) -> list[BatchResult]:
        return [await self._one(user_id, index, op) for index, op in enumerate(ops)]

    async def _one(self, user_id: str, index: int, op: BatchOp) -> BatchResult:
        try:
            return await self._run(user_id, index, op)
        except ProblemError as exc:
            problem = problem_body(exc.status, exc.detail, type_slug=exc.type_slug, extra=exc.extra)
            return BatchResult(index=index, status=exc.status, problem=problem)
        except ValidationError as exc:
            errors = [
                {**e, "loc": ["ops", index, "body", *e["loc"]]}
                for e in validation_errors(exc.errors())
            ]
            detail = f"The request is not valid: ops.{index}.body: {errors[0]['msg']}"
            problem = problem_body(
                422, detail, type_slug="validation-error", extra={"errors": errors}
            )
            return BatchResult(index=index, status=422, problem=problem)

    async def _run(self, user_id: str, index: int, op: BatchOp) -> BatchResult:
        kind = self._kinds[op.type]
        if_match = None if op.if_match is None else IfMatch(op.if_match)
        if op.op == "delete":
            if op.body is not None:
                raise _body_problem(index, "A delete takes no body.")
            await kind.delete(user_id, op.id, if_match)
            return BatchResult(index=index, status=204)
        if op.body is None:
            raise _body_problem(index, f"A {op.op} needs a body.")
        if op.op == "put":
            doc, created = await kind.put(
                user_id, op.id, kind.create.model_validate(op.body), if_match
            )
            return _written(kind, index, 201 if created else 200, doc)
        doc = await kind.patch(user_id, op.id, kind.update.model_validate(op.body), if_match)
        return _written(kind, index, 200, doc)


def _written(kind: Kind, index: int, status: int, doc: OutboxDocument) -> BatchResult:
    body = kind.read.from_document(doc).model_dump(mode="json")
    return BatchResult(index=index, status=status, etag=entity_tag(doc), body=body)


def _body_problem(index: int, msg: str) -> ProblemError:
    loc: list[str | int] = ["ops", index, "body"]
    return ProblemError(
        422,
        f"The request is not valid: ops.{index}.body: {msg}",
        type_slug="validation-error",
        extra={"errors": [{"loc": loc, "msg": msg, "type": "value_error"}]},
    )
