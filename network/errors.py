"""Exceptions raised while building or running the network."""

from __future__ import annotations

from pathlib import Path

from modelledger.runtime.processes import ProcessFailedError


class NetworkError(Exception):
    """Something in the network could not be generated, started or queried."""


class ToolsMissingError(NetworkError):
    """A Fabric binary or the stock configuration is not installed."""


class TopologyError(NetworkError):
    """The topology file is malformed; the message names the field."""


class CommandError(NetworkError):
    """A Fabric command-line tool exited with an error.

    Attributes:
        argv: The command that ran, with secrets masked.
        returncode: Its exit status.
        output: What it printed (stdout and stderr), trimmed.
    """

    def __init__(self, argv: list[str], returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        lines = output.strip().splitlines()
        # Cobra tools print their whole usage after an error; keep only what precedes it.
        usage = next((i for i, line in enumerate(lines) if line.startswith("Usage:")), len(lines))
        tail = "\n".join(lines[:usage][-15:])
        super().__init__(f"{Path(argv[0]).name} exited with {returncode}:\n{tail}")


class ChaincodeError(NetworkError):
    """The chaincode could not be built, deployed or reached."""


class NodeFailedError(ProcessFailedError, NetworkError):
    """A node of the network (CA, orderer, peer, chaincode server) exited or did not become healthy in time.

    The runtime's :class:`~modelledger.runtime.processes.ProcessFailedError` (``node``, ``log_path``,
    ``reason``), raised as a network error.
    """
