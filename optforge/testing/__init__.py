"""Test utilities that are useful beyond optforge's own suite (e.g. a throwaway PostgreSQL server).

Import the submodules directly (``optforge.testing.postgres``); this package imports nothing heavy.
"""
