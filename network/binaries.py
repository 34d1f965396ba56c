"""Locating the Fabric binaries and the stock configuration built by ``make tools``."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelledger.network.errors import CommandError, ToolsMissingError
from modelledger.runtime.private_files import PRIVATE_UMASK

REQUIRED = (
    "peer",
    "orderer",
    "configtxgen",
    "configtxlator",
    "osnadmin",
    "fabric-ca-server",
    "fabric-ca-client",
)


@dataclass(frozen=True)
class FabricBinaries:
    """Paths to the installed tools and Fabric's stock ``sampleconfig`` folder."""

    bin_dir: Path
    sampleconfig: Path

    @classmethod
    def locate(cls, tools_dir: Path) -> FabricBinaries:
        """Finds the tools under ``tools_dir``.

        Raises:
            ToolsMissingError: If a binary or the stock config is missing.
        """
        bin_dir = tools_dir / "bin"
        missing = [b for b in REQUIRED if not os.access(bin_dir / b, os.X_OK)]
        if missing:
            raise ToolsMissingError(f"missing Fabric tools in {bin_dir}: {', '.join(missing)}; run `make tools`")
        marker = tools_dir / "fabric-sampleconfig.path"
        try:
            sampleconfig = Path(marker.read_text().strip())
        except OSError as exc:
            raise ToolsMissingError(f"{marker} is missing; run `make tools`") from exc
        for f in ("core.yaml", "orderer.yaml"):
            if not (sampleconfig / f).is_file():
                raise ToolsMissingError(
                    f"stock {f} not found in {sampleconfig} (Go module cache cleaned?); run `make tools`"
                )
        return cls(bin_dir, sampleconfig)

    def path(self, name: str) -> str:
        """Absolute path of the tool ``name``."""
        return str(self.bin_dir / name)

    def run(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        timeout: float = 120.0,
        cwd: Path | None = None,
    ) -> str:
        """Runs a tool to completion (with umask 077) and returns its combined output.

        Args:
            name: The tool, e.g. ``"peer"``.
            args: Its arguments.
            env: Extra environment variables (added to a minimal base).
            secrets: Strings masked as ``***`` in any error message.
            timeout: Seconds before the tool is killed.
            cwd: Working directory.

        Raises:
            CommandError: If the tool exits non-zero or times out.
        """
        argv = [self.path(name), *args]
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
        }
        full_env.update(env or {})

        def mask(text: str) -> str:
            for s in secrets:
                if s:
                    text = text.replace(s, "***")
            return text

        try:
            proc = subprocess.run(
                argv,
                env=full_env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                umask=PRIVATE_UMASK,
            )
        except subprocess.TimeoutExpired as exc:
            out = "".join(
                (part.decode(errors="replace") if isinstance(part, bytes) else part)
                for part in (exc.stdout, exc.stderr)
                if part
            )
            raise CommandError([mask(a) for a in argv], -1, mask(f"timed out after {timeout}s\n{out}")) from exc
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise CommandError([mask(a) for a in argv], proc.returncode, mask(output))
        return proc.stdout if proc.stdout.strip() else output
