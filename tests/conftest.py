"""Fixtures any test folder may ask for by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops import settings
from jupyter_mlops.kfp.connection import ENVIRONMENT


@pytest.fixture
def no_ambient_kfp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KFP host or credentials from the machine: none of the KFP variables that
    kfp/connection.py reads, and its config file pointed at a file that does not exist."""
    for names in ENVIRONMENT.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.KFP_CONFIG.name, str(tmp_path / "absent.json"))
