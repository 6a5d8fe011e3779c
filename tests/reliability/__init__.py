"""Reliability tests: faults done for real (killed processes, a restarted database, an unwritable disk)."""
