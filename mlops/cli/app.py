"""Entry point of the ``modelledger`` command."""

from __future__ import annotations

import os

import typer

from modelledger.mlops.cli import bridge, chaincode, ledger, model, network, store
from modelledger.mlops.cli.servers import mlflow_app, s3_app

app = typer.Typer(
    help="ModelLedger: prove which model ran, where it came from and who signed off.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(network.app, name="network")
app.add_typer(chaincode.app, name="chaincode")
app.add_typer(model.app, name="model")
app.add_typer(ledger.app, name="ledger")
app.add_typer(s3_app, name="s3")
app.add_typer(store.app, name="store")
app.add_typer(mlflow_app, name="mlflow")
app.add_typer(bridge.app, name="bridge")


@app.command()
def demo() -> None:
    """Train, log and register a model in MLflow, wait for its anchoring, verify it and a tampered copy."""
    from modelledger.mlops.demo import run

    raise SystemExit(run())


@app.command("demo-clean")
def demo_clean() -> None:
    """Delete the demo's log of MLflow's and the other libraries' output (``<state>/demo/demo.log``)."""
    from modelledger.mlops.library_output import remove_demo_log

    removed = remove_demo_log()
    typer.echo(f"removed the demo's log {removed}" if removed else "no demo log to remove")


def main() -> None:
    """Runs the CLI.

    A ``COLUMNS`` below :data:`~modelledger.mlops.cli.output.MIN_WIDTH` (``COLUMNS=0``) is raised to it first,
    so that typer's help, which is not printed by the CLI's console, is laid out as everything else is.
    """
    from modelledger.mlops.cli.output import MIN_WIDTH

    try:
        narrow = int(os.environ.get("COLUMNS", "")) < MIN_WIDTH
    except ValueError:
        narrow = False
    if narrow:
        os.environ["COLUMNS"] = str(MIN_WIDTH)
    app()


if __name__ == "__main__":
    main()
