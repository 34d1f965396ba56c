"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a free loopback port.

PostgreSQL refuses to run as root, so under root the cluster belongs to the
``postgres`` system user (created by Debian's ``postgresql`` package, which
``.ci/run`` installs) and its commands run through ``runuser``. The password
reaches ``initdb`` in a file and the clients in ``PGPASSWORD``, never argv.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "mlflow"
DATABASE = "mlflow"


class PostgresMissingError(Exception):
    """PostgreSQL's server programs are not installed (the message says how to get them)."""


def server_bin() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``psql`` of the newest installed PostgreSQL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise PostgresMissingError(
        "the PostgreSQL backend test needs PostgreSQL's server (initdb, pg_ctl): "
        "`apt-get install postgresql` (.ci/run does this)"
    )


@dataclass
class ThrowawayPostgres:
    """One cluster: ``start()``, ``uri``, ``sql()``, ``stop()`` (which deletes everything)."""

    port: int
    password: str = ""
    folder: Path | None = None

    def _run(self, *argv: str, env: dict[str, str] | None = None) -> str:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            cwd="/",
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return done.stdout

    def start(self) -> None:
        bin_dir = server_bin()
        self.password = secrets.token_urlsafe(16)
        self.folder = Path(tempfile.mkdtemp(prefix="modelledger-pg-"))
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.folder, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        data = self.folder / "data"
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-instructions",
        )
        pwfile.unlink()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self._run(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )
        self.sql("CREATE DATABASE mlflow", database="postgres")

    @property
    def uri(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def sql(self, statement: str, database: str = DATABASE) -> str:
        """Runs one statement with psql; returns its unaligned, tuples-only output."""
        return self._run(
            str(server_bin() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            database,
            "-Atc",
            statement,
            env={"PGPASSWORD": self.password},
        ).strip()

    def stop(self) -> None:
        if self.folder is None:
            return
        try:
            self._run(str(server_bin() / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        except RuntimeError as exc:
            print(f"postgres stop: {exc}")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
