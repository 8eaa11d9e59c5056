"""What the lifespan builds, typed, and the ``Annotated`` dependencies that hand it out."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from momentum_libs.consumer import StreamConsumer
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.reads.freshness import Freshness
from momentum_analytics.reads.service import ReadService
from momentum_analytics.settings import AnalyticsSettings


@dataclass
class State:
    settings: AnalyticsSettings
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis
    reads: ReadService
    freshness: Freshness
    projections: ProjectionService
    consumer: StreamConsumer | None


def app_state(request: Request) -> State:
    state: State = request.app.state.analytics
    return state


def reads(request: Request) -> ReadService:
    return app_state(request).reads


def freshness(request: Request) -> Freshness:
    return app_state(request).freshness


Reads = Annotated[ReadService, Depends(reads)]
Fresh = Annotated[Freshness, Depends(freshness)]
AppState = Annotated[State, Depends(app_state)]
