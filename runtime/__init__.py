"""The runtime every ModelLedger process shares: supervision, one server lifecycle, settings, private files, TLS."""
