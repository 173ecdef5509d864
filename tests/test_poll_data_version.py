"""The poller skips every query but ``PRAGMA data_version`` while nothing was committed elsewhere.

Real run log file, the real ``RunLogPoller`` (ticked directly on this thread), statements counted
with sqlite3's trace callback on the poller's own connection; the commits come from another
process.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from backend import queries
from backend.runlog import RunLog
from backend.vocab import Status
from reset_gui.poller import RunLogPoller


def _commit_elsewhere(path, code: str) -> None:
    """Run ``code`` (with ``log`` open on the run log) in a separate Python process."""
    script = textwrap.dedent(f"""
        from backend.runlog import RunLog
        log = RunLog({str(path)!r})
        {code}
        log.close()
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


@pytest.fixture
def poller(qapp, tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunLog(path) as log:
        log.create_run("r1", name="one", preset="p", config_toml="", run_dir=str(tmp_path))
        log.event("r1", "hello")
    p = RunLogPoller(path, reconcile_s=0.0)
    got: dict[str, list] = {"runs": [], "rows": [], "caught_up": 0}
    p.runs_changed.connect(lambda runs: got["runs"].append(runs))
    p.rows.connect(lambda table, rows: got["rows"].append((table, rows)))
    p.caught_up.connect(lambda: got.__setitem__("caught_up", got["caught_up"] + 1))
    p.tick()  # the first poll reads everything
    statements: list[str] = []
    p._log.conn.set_trace_callback(statements.append)
    yield p, path, got, statements
    p.stop()


def test_data_version_moves_only_on_another_connections_commit(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunLog(path) as mine, RunLog(path) as other:
        v0 = queries.data_version(mine)
        mine.event(None, "my own write")
        assert queries.data_version(mine) == v0  # own commits do not move it
        other.event(None, "someone else's write")
        assert queries.data_version(mine) != v0


def test_idle_poll_runs_only_the_pragma_and_a_commit_elsewhere_is_seen(poller):
    p, path, got, statements = poller
    assert [r["id"] for r in got["runs"][-1]] == ["r1"]
    assert any(t == "events" and rows[0]["message"] == "hello" for t, rows in got["rows"])
    n_runs, n_rows, n_caught = len(got["runs"]), len(got["rows"]), got["caught_up"]

    for _ in range(3):  # nothing committed: one pragma per tick, no signal but caught_up
        statements.clear()
        p.tick()
        assert statements == ["PRAGMA data_version"]
    assert (len(got["runs"]), len(got["rows"])) == (n_runs, n_rows)
    assert got["caught_up"] == n_caught + 3

    _commit_elsewhere(path, "log.update_run('r1', status='succeeded'); log.event('r1', 'bye')")
    statements.clear()
    p.tick()
    assert len(statements) > 1  # a full poll this time
    assert got["runs"][-1][0]["status"] == Status.SUCCEEDED
    assert got["rows"][-1][0] == "events" and got["rows"][-1][1][0]["message"] == "bye"

    statements.clear()
    p.tick()
    assert statements == ["PRAGMA data_version"]


def test_a_vanished_worker_is_still_found_without_any_commit(poller):
    """Reconcile does not wait for a commit: a dead worker writes nothing, yet shows as died."""
    p, path, got, statements = poller
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    _commit_elsewhere(path, f"log.update_run('r1', status='running', pid={dead})")
    p.tick()  # sees the running run
    assert got["runs"][-1][0]["status"] == Status.RUNNING
    statements.clear()
    p.tick()  # no commit since, but a running run is due a reconcile
    assert got["runs"][-1][0]["status"] == Status.DIED
    assert len(statements) > 1
    statements.clear()
    p.tick()  # nothing running any more, nothing committed elsewhere: idle again
    assert statements == ["PRAGMA data_version"]
