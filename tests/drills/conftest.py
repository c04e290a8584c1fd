"""The failure drills' cluster: one real local cluster (platform/stack.py) for the whole session.

Any drill module can take the `cluster` fixture; the cluster is started once, on a free block
of ports in a temporary directory, and stopped at the end of the session, even on failure.
`healthy_cluster` starts every component again after the test and waits until all are
healthy, so drills can run in any order. Each drill reports one line
(`DRILL name: requests=N failed=N recovery_s=X lost_writes=N`) and the session ends with the
table of all of them.
"""

import os
import shutil

import pytest

from common.local_services import service_tempdir
from tests.drills.cluster import RESULTS, Cluster, DrillResult, free_base_port


@pytest.fixture(scope="session")
def cluster():
    directory = service_tempdir("herald-drills-")
    instance = Cluster(directory, free_base_port())
    try:
        instance.run("up", "--detach", timeout=300)
        yield instance
    finally:
        instance.stop_loads()
        instance.run("down", check=False, timeout=180)
        if os.environ.get("HERALD_KEEP_DRILL_CLUSTER") != "1":
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def healthy_cluster(cluster):
    """The session's cluster at full health; put back to full health after the test."""
    cluster.restore()
    yield cluster
    cluster.stop_loads()
    cluster.restore()


@pytest.fixture
def report(request):
    """Call with a DrillResult: prints its DRILL line at once and adds it to the closing table."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def record(result: DrillResult) -> DrillResult:
        RESULTS.append(result)
        with capture.global_and_fixture_disabled():
            print(f"\n{result.line}", flush=True)
        return result

    return record


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    terminalreporter.section("failure drills")
    terminalreporter.write_line(
        f"{'drill':<24} {'requests':>8} {'failed':>6} {'recovery_s':>10} {'lost_writes':>11}  expectation"
    )
    for result in RESULTS:
        verdict = "met" if result.passed else "NOT MET"
        terminalreporter.write_line(
            f"{result.name:<24} {result.requests:>8} {result.failed:>6} {result.recovery_s:>10.1f} "
            f"{result.lost_writes:>11}  {result.expectation} ({verdict})"
        )
    for result in RESULTS:
        terminalreporter.write_line(result.line)
