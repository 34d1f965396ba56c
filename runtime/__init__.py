"""The runtime every ModelLedger process shares: supervision, one lifecycle and status, settings, private files, TLS."""
