"""FastAPI dependencies of this service, as ``Annotated`` aliases."""

from typing import Annotated

from fastapi import Depends, Request
from momentum_libs.deps import CurrentUser
from momentum_libs.relay import OutboxRelay

from momentum_tracking.settings import TrackingSettings
from momentum_tracking.store import Notify


def _settings(request: Request) -> TrackingSettings:
    settings: TrackingSettings = request.app.state.settings
    return settings


def _notify(request: Request) -> Notify:
    relay: OutboxRelay = request.app.state.relay
    return relay.notify


Settings = Annotated[TrackingSettings, Depends(_settings)]
Notifier = Annotated[Notify, Depends(_notify)]
"""Wakes the outbox relay after a write."""

__all__ = ["CurrentUser", "Notifier", "Settings"]
