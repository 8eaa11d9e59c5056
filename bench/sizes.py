"""How much each phase does: the full run (``make bench``) and the quick smoke run."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sizes:
    warmup_s: float
    settle_s: float
    gateway_duration_s: float
    gateway_concurrency: int
    gateway_rounds: int  # direct and gateway alternate, each this many times
    write_duration_s: float
    write_concurrency: int
    write_users: int
    history_days: int  # the "three years" user
    logs_per_day: int
    seed_concurrency: int
    warmup_samples: int
    dashboard_samples: int
    lag_probes_idle: int
    lag_probes_load: int
    lag_timeout_s: float
    lag_probe_interval_s: float  # under load: a probe write this often
    load_rampup_s: float
    load_max_s: float  # the background write load is stopped when the probes are done
    drain_timeout_s: float
    flood_s: float  # login_flood: how long the victim is probed, per setting
    rebuild_logs: int
    import_logs: int  # imports: daily logs in the file (the full size is ~1 MiB)
    partition_events: int  # partitions: log writes per analytics replica count (quick: only
    # with --phases partitions)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(
    warmup_s=1.0,
    settle_s=1.0,
    gateway_duration_s=5.0,
    gateway_concurrency=32,
    gateway_rounds=3,
    write_duration_s=15.0,
    write_concurrency=32,
    write_users=16,
    history_days=3 * 365 + 1,
    logs_per_day=2,
    seed_concurrency=16,
    warmup_samples=20,
    dashboard_samples=300,
    lag_probes_idle=300,
    lag_probes_load=200,
    lag_timeout_s=10.0,
    lag_probe_interval_s=0.1,
    load_rampup_s=2.0,
    load_max_s=180.0,
    drain_timeout_s=180.0,
    flood_s=10.0,
    rebuild_logs=100_000,
    import_logs=11_000,
    partition_events=3_000,
)

QUICK = Sizes(
    warmup_s=0.0,
    settle_s=0.2,
    gateway_duration_s=1.0,
    gateway_concurrency=32,
    gateway_rounds=1,
    write_duration_s=1.0,
    write_concurrency=32,
    write_users=2,
    history_days=5,
    logs_per_day=2,
    seed_concurrency=4,
    warmup_samples=2,
    dashboard_samples=10,
    lag_probes_idle=5,
    lag_probes_load=5,
    lag_timeout_s=3.0,
    lag_probe_interval_s=0.1,
    load_rampup_s=0.5,
    load_max_s=30.0,
    drain_timeout_s=30.0,
    flood_s=2.0,
    rebuild_logs=1_000,
    import_logs=300,
    partition_events=100,
)
