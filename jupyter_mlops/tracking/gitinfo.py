"""Source tags for a session run: the notebook and, inside a git repository, commit and dirty state.

Called in the writer's syncer thread (git takes milliseconds; the cell must not wait for it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from jupyter_mlops.steps import mlflow_vocabulary as vocab
from jupyter_mlops.tracking.notebook_info import notebook_tags


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_tags(folder: Path) -> dict[str, str]:
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {}
    tags = {vocab.GIT_COMMIT_TAG: commit}
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags[vocab.GIT_DIRTY_TAG] = "true" if status else "false"
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags[vocab.GIT_BRANCH_TAG] = branch
    remote = _git(folder, "config", "--get", "remote.origin.url")
    if remote:
        tags[vocab.GIT_REPO_TAG] = remote
    return tags


def source_tags(notebook: str) -> dict[str, str]:
    """Tags naming where the run came from; `notebook` may be '' when it is unknown."""
    path = Path(notebook) if notebook else None
    tags: dict[str, str] = {}
    if path is not None:
        tags[vocab.SOURCE_NAME_TAG] = str(path)
        tags[vocab.SOURCE_TYPE_TAG] = "NOTEBOOK" if path.suffix == ".ipynb" else "LOCAL"
        tags.update(notebook_tags(path))
    tags.update(git_tags(path.parent if path is not None else Path.cwd()))
    return tags
