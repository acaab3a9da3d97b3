"""Unit tests run without Ray: starting it here is a mistake this fixture reports."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _disallow_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unit tests must not start Ray; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", refuse)
