"""Who the bridge and the stack's tools are in MLflow: the stack's MLflow users and their credential files.

Each user has a random password in a 0600 file ``<state>/mlflow/users/<name>.env``
(``MLFLOW_TRACKING_URI``, ``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``:
MLflow's standard variables, so ``set -a; . <file>; set +a`` makes a shell that user).
``mlflow up`` writes the files and creates the users in the tracking server
(:mod:`modelledger.mlops.servers.tracking_auth`, which also holds the server's authorization
rules); this module only reads them, and makes a process act as one user.

- ``admin``: MLflow's bootstrap administrator; ``mlflow up`` uses it to create the others and
  ``bridge install`` to manage the bridge's webhook; nothing else does;
- ``modelledger-bridge``: the bridge (no MLflow admin: a role lets it tag every version);
- ``data-scientist``: a data scientist's account, as the README shows; the demo runs as it;
- ``evaluator``: the account of ``model evaluate`` and the demo's evaluations: it reads every model,
  version and artefact (the server's default READ) and writes runs only in its own experiment
  :data:`EVALUATIONS_EXPERIMENT`, so an evaluation is neither the developer's run nor able to change
  the developer's experiments, models or aliases.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelledger.runtime.settings import MlflowSettings

# The evaluator's own MLflow experiment: ``make up`` creates it as the evaluator (so only it, with MANAGE, and
# MLflow admins may write runs there); ``model evaluate`` and the demo put their evaluation runs in it.
EVALUATIONS_EXPERIMENT = "modelledger-evaluations"
TRACKING_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


class MlflowAuthError(Exception):
    """An MLflow user could not be read, created or checked (the message says what to do)."""


class MlflowUser(enum.StrEnum):
    """The stack's MLflow users; the value is the username."""

    ADMIN = "admin"
    BRIDGE = "modelledger-bridge"
    SCIENTIST = "data-scientist"
    EVALUATOR = "evaluator"

    @property
    def is_admin(self) -> bool:
        """Whether MLflow treats the user as an administrator."""
        return self is MlflowUser.ADMIN


@dataclass(frozen=True)
class MlflowCredentials:
    """One MLflow user's name and password; ``repr`` never shows the password."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        """The HTTP ``Authorization`` header value (basic)."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def user_file(settings: MlflowSettings, user: MlflowUser) -> Path:
    """Where ``user``'s credentials are kept (0600, in the 0700 ``users`` folder)."""
    return settings.mlflow_dir / "users" / f"{user.value}.env"


def read_user(settings: MlflowSettings, user: MlflowUser) -> MlflowCredentials:
    """The credentials of ``user``.

    Raises:
        MlflowAuthError: The file is missing or damaged (run ``make mlflow-up``).
    """
    path = user_file(settings, user)
    try:
        pairs = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return MlflowCredentials(pairs["MLFLOW_TRACKING_USERNAME"], pairs["MLFLOW_TRACKING_PASSWORD"])
    except FileNotFoundError as exc:
        raise MlflowAuthError(f"no MLflow credentials for {user.value} at {path}; run `make mlflow-up`") from exc
    except (OSError, KeyError, ValueError) as exc:
        raise MlflowAuthError(f"cannot read the MLflow credentials of {user.value} from {path}: {exc}") from exc


def user_env(settings: MlflowSettings, user: MlflowUser) -> dict[str, str]:
    """MLflow's standard client variables for ``user`` on this stack's server."""
    creds = read_user(settings, user)
    return dict(zip(TRACKING_VARIABLES, (settings.tracking_uri, creds.username, creds.password), strict=True))


def act_as(settings: MlflowSettings, user: MlflowUser) -> None:
    """Makes this process's MLflow client ``user`` from now on (a process that is that user: the bridge)."""
    os.environ.update(user_env(settings, user))


@contextlib.contextmanager
def acting_as(settings: MlflowSettings, user: MlflowUser) -> Iterator[MlflowCredentials]:
    """Makes this process's MLflow client ``user`` for the ``with`` block, then restores the variables."""
    saved = {k: os.environ.get(k) for k in TRACKING_VARIABLES}
    act_as(settings, user)
    try:
        yield read_user(settings, user)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
