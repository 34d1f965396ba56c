"""The ``modelledger`` command line: rich tables for people, ``--json`` for scripts."""
