"""Integration fixtures: show the Prefect server's and worker's logs when a test using them fails."""

import os

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tails of the server and worker logs to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    server = getattr(item, "funcargs", {}).get("served")
    if server is not None and hasattr(server, "describe"):
        report.sections.append(("prefect server and worker logs (tail)", server.describe()))
