"""The server extension's settings (`MlopsExtension.*` traits) are listed in the README as
declared: name, default and help, in a table generated from the traits themselves."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops.server.app import MlopsExtension

README = Path(__file__).resolve().parents[2] / "README.md"


def settings_table() -> str:
    """The README's table; regenerate it with `python tests/server/test_readme_settings.py`."""
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    for name, trait in MlopsExtension.class_own_traits(config=True).items():
        default = f"`{trait.default_value}`" if trait.default_value != "" else "(none)"
        rows.append(f"| `MlopsExtension.{name}` | {default} | {' '.join(trait.help.split())} |")
    return "\n".join(rows)


def test_the_readme_lists_every_server_setting_as_declared():
    assert settings_table() in README.read_text(encoding="utf-8"), (
        "regenerate the README's server settings table: "
        "python tests/server/test_readme_settings.py")


if __name__ == "__main__":
    print(settings_table())
