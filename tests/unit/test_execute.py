"""Stopping children on interruption, even one the registry never saw."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_stop_all_children_also_kills_a_child_missing_from_the_registry() -> None:
    # In a process of its own: in pytest's, it would kill the test bed's servers too.
    script = textwrap.dedent("""
        import os, subprocess
        from backup_agent import execute
        # As if SIGINT had landed inside Popen, after the fork, before the registry: a
        # child started behind execute's back.
        stray = subprocess.Popen(["sleep", "60"])
        registered = execute.spawn(["sleep", "60"], environment=dict(os.environ))
        execute.stop_all_children()
        print(stray.poll() is not None, registered.poll() is not None)
    """)
    # A surviving `sleep` would hold stdout open: the timeout is the failure we guard against.
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
