"""Fixtures of the deploy tests; their helpers live in deploy_support.py beside this file."""

import sys
from pathlib import Path

import pytest

# Let the test modules here import deploy_support (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_support import K8S, OVERLAYS, Rendered, render


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> Rendered:
    """One rendered overlay (``kubectl kustomize deploy/k8s/overlays/<name>``)."""
    name: str = request.param
    return Rendered(name, render(K8S / "overlays" / name))
