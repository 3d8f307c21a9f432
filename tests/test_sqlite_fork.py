"""A fork while another thread holds one of SQLite's global mutexes (dldiag.sqlite_fork)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A thread takes SQLite's allocator mutex (what a thread inside any SQLite call holds for a
# moment) and keeps it 0.5 s; meanwhile the main thread forks, and the child opens a database.
SCRIPT = textwrap.dedent("""
    import os, sys, threading, time, sqlite3
    from dldiag import sqlite_fork
    if sys.argv[1] == "install":
        assert sqlite_fork.install()
    lib, mutexes = sqlite_fork.held_mutexes()
    mem = dict(mutexes)["mem"]
    taken = threading.Event()
    def hold():
        lib.sqlite3_mutex_enter(mem)
        taken.set()
        time.sleep(0.5)
        lib.sqlite3_mutex_leave(mem)
    threading.Thread(target=hold).start()
    taken.wait()
    pid = os.fork()
    if pid == 0:
        sqlite3.connect(":memory:").execute("create table t (x)")
        os._exit(0)
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exited", os.waitstatus_to_exitcode(status))
            sys.exit(0)
        time.sleep(0.05)
    os.kill(pid, 9)
    print("child hung")
""")


def _run(mode: str, wait_s: float) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(wait_s)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_child_forked_while_a_thread_is_inside_sqlite_can_use_sqlite():
    assert _run("install", 30) == "child exited 0"
    # without the handlers the child starts on the allocator's mutex, held by a thread it does
    # not have: it never gets past opening the database (what the test suite's hung jobs did)
    assert _run("plain", 5) == "child hung"
