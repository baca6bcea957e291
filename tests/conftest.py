"""Shared pytest wiring: fixtures live in tests/fixtures/ (on sys.path via pyproject's pythonpath)."""

pytest_plugins = ["fixtures.cluster", "fixtures.servers"]
