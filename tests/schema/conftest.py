"""Session fixture: each real stack variant is rendered once and shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.schema.rendering import render


@pytest.fixture(scope="session")
def rendered_manifests(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """variant -> its manifests directory, rendered on first use."""
    cache: dict[str, Path] = {}

    def get(variant: str) -> Path:
        if variant not in cache:
            cache[variant] = render(variant, tmp_path_factory.mktemp(f"render-{variant}"))
        return cache[variant]

    return get
