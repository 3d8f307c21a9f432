"""A fork while another thread is inside SQLite's allocator (dldiag.sqlite_fork)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A thread takes SQLite's allocator mutex, as a thread inside sqlite3_malloc does when SQLite
# keeps memory statistics, and holds it 0.5 s; meanwhile the main thread forks, and the child
# opens a database.
SCRIPT = textwrap.dedent("""
    import ctypes, ctypes.util, os, sys, threading, time
    if sys.argv[1] == "dldiag-first":
        import dldiag
        from dldiag import sqlite_fork
        assert sqlite_fork.memstatus_disabled()
    import sqlite3
    if sys.argv[1] != "dldiag-first":
        from dldiag import sqlite_fork
        assert not sqlite_fork.disable_memstatus()  # too late: SQLite has initialised
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_mutex_alloc.restype = ctypes.c_void_p
    lib.sqlite3_mutex_enter.argtypes = lib.sqlite3_mutex_leave.argtypes = [ctypes.c_void_p]
    mem = lib.sqlite3_mutex_alloc(3)  # SQLITE_MUTEX_STATIC_MEM
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")
def test_a_child_forked_while_a_thread_is_in_sqlite_s_allocator_can_use_sqlite():
    assert _run("dldiag-first", 30) == "child exited 0"
    # sqlite3 imported before dldiag: SQLite keeps statistics under that mutex, and the child
    # starts on it locked by a thread it does not have (what the suite's hung jobs did)
    assert _run("sqlite-first", 5) == "child hung"


def test_the_app_s_process_has_the_statistics_off():
    """The test process imports dldiag (conftest) before anything imports sqlite3."""
    from dldiag import sqlite_fork

    assert sqlite_fork.memstatus_disabled()
