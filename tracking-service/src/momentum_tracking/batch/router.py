from fastapi import APIRouter
from momentum_libs.problems import problem_responses

from momentum_tracking.batch.schemas import BatchRequest, BatchResponse
from momentum_tracking.deps import Batch, CurrentUser

router = APIRouter(prefix="/batch", tags=["sync"])


@router.post(
    "",
    operation_id="applyBatch",
    summary="Apply up to 200 puts, patches and deletes in order, each on its own",
    response_model_exclude_none=True,
    responses=problem_responses(401, 422, 503),
)
async def apply_batch(body: BatchRequest, user: CurrentUser, batch: Batch) -> BatchResponse:
    return BatchResponse(results=await batch.apply(user.user_id, body.ops))
