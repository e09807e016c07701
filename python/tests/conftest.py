"""Shared fixtures: the repository root (scenario files, the trajectory fixture, the examples)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo() -> Path:
    return REPO
