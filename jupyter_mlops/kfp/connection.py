"""Where the KFP API is and how to authenticate: arguments, then environment, then config file.

Never from the notebook: a notebook is shared and committed, credentials are not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from jupyter_mlops import settings
from jupyter_mlops.errors import KfpSubmitError

# Each setting, the environment variables read for it in order (ours, then kfp's own).
ENVIRONMENT = {
    "host": ("KFP_HOST", "KF_PIPELINES_ENDPOINT"),
    "token": ("KFP_TOKEN", "KF_PIPELINES_TOKEN"),
    "namespace": ("KFP_NAMESPACE",),
    "cookies": ("KFP_COOKIES",),
}


@dataclass(frozen=True)
class Connection:
    """How to reach one KFP API server."""

    host: str
    token: str | None = None
    namespace: str | None = None
    cookies: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.cookies:
            headers["Cookie"] = self.cookies
        return headers


def resolve_connection(host: str | None = None, token: str | None = None,
                       namespace: str | None = None, config: str | Path | None = None,
                       ) -> Connection:
    """Each setting from the first place that has it: the argument, the environment, the file."""
    given = {"host": host, "token": token, "namespace": namespace, "cookies": None}
    stored = _read_config(config)
    found = {key: value or _from_environment(key) or stored.get(key)
             for key, value in given.items()}
    host = found.pop("host")
    if not host:
        raise KfpSubmitError("no KFP host: pass --host URL, set KFP_HOST, or put "
                             f'{{"host": "..."}} in {config or _config_path()}')
    if not str(host).startswith(("http://", "https://")):
        raise KfpSubmitError(f"KFP host {host!r}: expected an http:// or https:// URL (e.g. "
                             f"https://{str(host).split('://')[-1]})")
    return Connection(host=str(host).rstrip("/"), **found)


def _from_environment(key: str) -> str | None:
    return next((os.environ[name] for name in ENVIRONMENT[key] if os.environ.get(name)), None)


def _config_path() -> Path:
    return settings.KFP_CONFIG.get()


def _read_config(config: str | Path | None) -> dict[str, str]:
    path = Path(config).expanduser() if config else _config_path()
    if not path.exists():
        if config:
            raise KfpSubmitError(f"config file {path} does not exist")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = str(error).split(";")[0]
        raise KfpSubmitError(f"config file {path} is not readable JSON: {reason}") from None
    except RecursionError:
        raise KfpSubmitError(f"config file {path} is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise KfpSubmitError(f"config file {path} must hold a JSON object")
    for key in ENVIRONMENT:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise KfpSubmitError(f"config file {path}: {key!r} must be a string, "
                                 f"not {type(data[key]).__name__}")
    return {key: value for key, value in data.items() if key in ENVIRONMENT and value}
