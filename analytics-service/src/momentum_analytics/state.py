"""What the lifespan builds, typed: the shared base plus analytics' own services."""

from dataclasses import dataclass

from fastapi import Request
from momentum_libs.partitioned import LogConsumer
from momentum_libs.state import ServiceState, service_state

from momentum_analytics.projections.service import ProjectionService
from momentum_analytics.reads.freshness import Freshness
from momentum_analytics.reads.service import ReadService


@dataclass(kw_only=True)
class AnalyticsState(ServiceState):
    reads: ReadService
    freshness: Freshness
    projections: ProjectionService
    consumer: LogConsumer | None  # None: this process serves reads only


def analytics_state(request: Request) -> AnalyticsState:
    state = service_state(request)
    assert isinstance(state, AnalyticsState)
    return state
