"""``Annotated`` dependencies handing out what the lifespan built."""

from typing import Annotated

from fastapi import Depends, Request

from momentum_analytics.reads.freshness import Freshness
from momentum_analytics.reads.service import ReadService
from momentum_analytics.state import analytics_state


async def read_service(request: Request) -> ReadService:
    return analytics_state(request).reads


async def freshness(request: Request) -> Freshness:
    return analytics_state(request).freshness


Reads = Annotated[ReadService, Depends(read_service)]
Fresh = Annotated[Freshness, Depends(freshness)]
