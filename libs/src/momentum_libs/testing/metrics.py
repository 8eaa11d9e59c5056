"""Reading this process's Prometheus series in tests."""

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The current value of one series of this process (0 before its first change)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
