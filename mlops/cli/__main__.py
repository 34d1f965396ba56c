"""``python -m modelledger.mlops.cli``."""

from modelledger.mlops.cli.app import main

main()
