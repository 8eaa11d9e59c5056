"""What the lifespan builds, typed: stores, the relay, the consumer, the services."""

from dataclasses import dataclass

from momentum_libs.consumer import StreamConsumer
from momentum_libs.expiry import Expiries
from momentum_libs.partitioned import LogConsumer
from momentum_libs.relay import OutboxRelay
from momentum_libs.state import ServiceState

from momentum_tracking.batch.service import BatchService
from momentum_tracking.breaks.service import BreakService
from momentum_tracking.changes.service import ChangeService
from momentum_tracking.days.service import DayService
from momentum_tracking.erasure.service import ErasureService
from momentum_tracking.exports.service import ExportService
from momentum_tracking.goals.service import GoalService
from momentum_tracking.imports.service import ImportService
from momentum_tracking.logs.service import LogService
from momentum_tracking.settings import TrackingSettings
from momentum_tracking.targets.service import TargetService


@dataclass(kw_only=True)
class TrackingState(ServiceState):
    settings: TrackingSettings
    relay: OutboxRelay
    consumer: LogConsumer
    # Dead letters replayed to this group alone; None: a partitioned log, whose replicas
    # read each partition's replay stream with the partition.
    replay_consumer: StreamConsumer | None
    expiries: Expiries  # the TTL indexes (swept by us on the embedded server)
    goals: GoalService
    targets: TargetService
    logs: LogService
    breaks: BreakService
    days: DayService
    erasure: ErasureService
    changes: ChangeService
    batch: BatchService
    exports: ExportService
    imports: ImportService
