"""Where ``make demo`` and ``model evaluate`` send what the libraries underneath print: a log file, not the terminal.

Their console tells only their story; the log lines, warnings, MLflow event
messages and run links of MLflow, urllib3, botocore, scikit-learn and XGBoost go
to a log file (:func:`library_output_to`): the demo's is ``<state>/demo/demo.log``
(:func:`demo_log_path`), ``model evaluate``'s ``<state>/evaluator/evaluate.log``
(:func:`evaluate_log_path`); each prints its path.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from modelledger.runtime.private_files import open_private_log
from modelledger.runtime.settings import state_dir

_log = logging.getLogger("modelledger.demo")


# The loggers MLflow gives their own stderr handler (and propagate=False) when it is imported.
MLFLOW_OWN_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")
# MLflow's switches for what it writes to the terminal itself rather than through logging: the
# "🏃 View run … / 🧪 View experiment …" lines (sys.stdout) and the artifacts' tqdm progress bars.
# The demo writes the run's link to its log instead.
MLFLOW_QUIET_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


class _LinesToLog:
    """A text stream whose complete lines become INFO records of ``logger`` (MLflow's ``eprint`` stream)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pending = ""

    def write(self, text: str) -> int:
        """Logs each complete line of ``text``; keeps a trailing partial line for the next write."""
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line)
        return len(text)

    def flush(self) -> None:
        """Logs a pending partial line."""
        if self._pending.strip():
            self._logger.info("%s", self._pending)
        self._pending = ""


def demo_log_path() -> Path:
    """Where the demo writes the other libraries' log lines and warnings: ``<state>/demo/demo.log``."""
    return state_dir() / "demo" / "demo.log"


def evaluate_log_path() -> Path:
    """Where ``model evaluate`` writes MLflow's and the other libraries' output: ``<state>/evaluator/evaluate.log``."""
    return state_dir() / "evaluator" / "evaluate.log"


def remove_demo_log() -> Path | None:
    """Deletes :func:`demo_log_path` (and its folder once empty); returns the path if it existed."""
    path = demo_log_path()
    if not path.is_file():
        return None
    path.unlink()
    with contextlib.suppress(OSError):  # not empty: something else lives there, keep it
        path.parent.rmdir()
    return path


@contextlib.contextmanager
def library_output_to(path: Path) -> Iterator[Path]:
    """Sends the libraries' log records and warnings to ``path`` (0600, appended), not to the terminal.

    Inside the block, every logger propagates to the root logger, whose only
    handler is the file: MLflow's own loggers lose the stderr handler MLflow
    gives them on import, ``warnings`` go through logging
    (:func:`logging.captureWarnings`), MLflow's event messages (``eprint``:
    "Successfully registered model …", "Created version …"), written to the
    stream ``mlflow.utils.logging_utils.MLFLOW_LOGGING_STREAM`` and from there
    to stderr, become records of the ``mlflow.events`` logger, and MLflow's
    direct terminal writes (run links, progress bars) are switched off by
    :data:`MLFLOW_QUIET_ENV`. What
    the demo prints itself, and exceptions, are untouched. Everything is put
    back on exit.

    Args:
        path: The log file (created mode 0600 in a 0700 folder if missing).

    Yields:
        ``path``.
    """
    import mlflow  # noqa: F401  (imported first: its import installs the handlers replaced below)
    from mlflow.utils import logging_utils as mlflow_logging

    saved_events = mlflow_logging.MLFLOW_LOGGING_STREAM
    events = _LinesToLog(logging.getLogger("mlflow.events"))

    saved_env = {k: os.environ.get(k) for k in MLFLOW_QUIET_ENV}
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    own_loggers = [logging.getLogger(name) for name in MLFLOW_OWN_LOGGERS]
    saved_own = [(own, own.handlers[:], own.level, own.propagate) for own in own_loggers]
    stream = os.fdopen(open_private_log(path), "a", encoding="utf-8")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    try:
        os.environ.update(MLFLOW_QUIET_ENV)
        for own in own_loggers:
            own.handlers = []
            own.propagate = True
        logging.getLogger("mlflow").setLevel(logging.INFO)
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        mlflow_logging.MLFLOW_LOGGING_STREAM = events  # eprint() looks the stream up at each call
        _log.info("demo started at %s", datetime.now(UTC).isoformat(timespec="seconds"))
        yield path
    finally:
        events.flush()
        mlflow_logging.MLFLOW_LOGGING_STREAM = saved_events
        logging.captureWarnings(False)
        root.handlers, level = saved_root
        root.setLevel(level)
        for own, handlers, level, propagate in saved_own:
            own.handlers, own.propagate = handlers, propagate
            own.setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        handler.close()
        stream.close()
