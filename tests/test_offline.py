"""The network guard itself: it must refuse, in this process and in the processes the tests start."""
import os
import socket
import subprocess
import sys

import pytest


def test_connection_outside_loopback_is_refused_and_logged(tmp_path, monkeypatch):
    log = tmp_path / "attempts.log"
    monkeypatch.setenv("FTKIT_NET_LOG", str(log))  # keep this deliberate attempt out of the session log
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OSError, match="blocked"):
        socket.getaddrinfo("example.org", 443)
    assert log.read_text().count("\n") == 2


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()


def test_child_processes_are_guarded(tmp_path):
    log = tmp_path / "attempts.log"
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    env = {**os.environ, "FTKIT_NET_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "blocked by the ftkit test suite" in proc.stderr
    assert "192.0.2.1" in log.read_text()
