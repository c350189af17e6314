"""Environment variables: each declared once in jupyter_mlops/settings.py, listed in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jupyter_mlops import settings

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"JUPYTER_MLOPS_[A-Z0-9_]+")
SEARCHED = ["jupyter_mlops/**/*.py", "tests/**/*.py", "benchmarks/**/*.py", "benchmarks/*.md",
            "labextension/src/*.ts", "labextension/schema/*.json", "README.md", "Makefile"]


def _mentions() -> dict[Path, str]:
    """The project's own files (what git would hold: not a benchmark's venv under .work)."""
    return {path: path.read_text(encoding="utf-8") for pattern in SEARCHED
            for path in ROOT.glob(pattern) if ".work" not in path.relative_to(ROOT).parts}


def test_the_readme_lists_every_setting_as_declared():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in readme, "regenerate the README's table: " \
        "python -c 'from jupyter_mlops import settings; print(settings.markdown_table())'"


def test_every_variable_mentioned_is_declared_and_only_settings_spells_one_in_code():
    declared = [setting.name for setting in settings.ALL]
    assert len(declared) == len(set(declared)) and all(NAME.fullmatch(n) for n in declared)
    mentioned = {name for text in _mentions().values() for name in NAME.findall(text)}
    assert mentioned <= set(declared), f"not declared in settings.py: {mentioned - set(declared)}"
    spelled = [path.relative_to(ROOT) for path, text in _mentions().items()
               if path.suffix == ".py" and path.parts[-2:] != ("jupyter_mlops", "settings.py")
               and re.search(r"""["']JUPYTER_MLOPS_""", text)
               and ROOT / "jupyter_mlops" in path.parents]
    assert spelled == [], "read these variables through jupyter_mlops.settings"


def test_a_value_set_after_import_counts_and_a_bad_one_is_named(monkeypatch):
    assert settings.STDOUT_CAP.get() == 100_000
    monkeypatch.setenv("JUPYTER_MLOPS_STDOUT_CAP", "2500")
    assert settings.STDOUT_CAP.get() == 2500
    monkeypatch.setenv("JUPYTER_MLOPS_SENDER_IDLE", "soon")
    with pytest.raises(settings.SettingError, match="JUPYTER_MLOPS_SENDER_IDLE='soon'"):
        settings.check()  # as the command line does first
    monkeypatch.setenv("JUPYTER_MLOPS_UI_URL", "  ")
    assert settings.UI_URL.get() is None  # blank is unset
