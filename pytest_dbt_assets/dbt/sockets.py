"""The Unix sockets of the dbt worker and of its zygote: each bound in a folder of its own, as
``<folder>/s``, whatever the folder's length."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pytest_dbt_assets.dbt.client import SOCKET_NAME
from pytest_dbt_assets.errors import DbtWorkerError

# Unix socket paths hold at most 107 bytes on Linux, 103 on macOS; basetemps can be longer.
MAX_SOCKET_PATH = 100
SUBPROCESS_HINT = "--dbt-assets-runner=subprocess (ini: dbt_assets_runner = subprocess) runs dbt without the worker"


@contextlib.contextmanager
def socket_in(folder: Path, *, bind: bool = False) -> Iterator[socket.socket]:
    """A Unix socket bound to (or connected to) ``folder/s``, whatever the folder's length.

    On Linux the address goes through ``/proc/self/fd/<folder fd>/s``, a short path that
    the kernel resolves to the socket file in the folder; elsewhere the plain path is used
    when it fits.
    """
    sock = socket.socket(socket.AF_UNIX)
    try:
        bind_in(sock, folder, bind=bind)
        yield sock
    finally:
        sock.close()


def bind_in(sock: socket.socket, folder: Path, *, bind: bool = True) -> None:
    """Bind ``sock`` to (or connect it to) ``folder/s``; see :func:`socket_in`."""
    if Path("/proc/self/fd").is_dir():
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _bind_or_connect(sock, f"/proc/self/fd/{folder_fd}/{SOCKET_NAME}", bind)
        finally:
            os.close(folder_fd)
        return
    address = str(folder / SOCKET_NAME)
    if len(os.fsencode(address)) > MAX_SOCKET_PATH:
        raise DbtWorkerError(
            f"The dbt worker's socket path {address} is longer than a Unix socket address "
            f"allows ({MAX_SOCKET_PATH} bytes). Pass a shorter --basetemp, or "
            f"{SUBPROCESS_HINT}."
        )
    _bind_or_connect(sock, address, bind)


def _bind_or_connect(sock: socket.socket, address: str, bind: bool) -> None:
    if bind:
        sock.bind(address)
    else:
        sock.connect(address)
