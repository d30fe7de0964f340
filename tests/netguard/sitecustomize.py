"""Network guard for the test suite: no socket may leave this machine.

The tests put this folder on PYTHONPATH, so Python loads this file at start-up in every process they
launch (notebook kernels, nbval, the runner), and conftest.py installs it in the test process itself.
A connection or name lookup for anything but loopback raises OSError and is appended to the file named
by FTKIT_NET_LOG; the test session fails if that file is not empty at the end.
"""
import ipaddress
import os
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    host = str(host).strip("[]")
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str):
    log = os.environ.get("FTKIT_NET_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"pid {os.getpid()}: {what}\n")
    raise OSError(f"network access blocked by the ftkit test suite: {what}")


def install() -> None:
    if getattr(socket, "_ftkit_guarded", False):
        return
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect to {address[0]}:{address[1]}")
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(f"connect to {address[0]}:{address[1]}")
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_local(host.decode() if isinstance(host, bytes) else host):
            _refuse(f"look up {host}")
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    socket._ftkit_guarded = True


if os.environ.get("FTKIT_NET_LOG"):
    install()
