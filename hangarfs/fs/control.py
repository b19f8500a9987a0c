"""A staging mount's control socket: how ``hangarfs commit`` reaches the daemon that holds the writer.

One JSON request per connection, one JSON reply: ``{"op": "commit", "message": ...}`` ->
``{"ok": true, "commit": DIGEST}`` or ``{"ok": false, "error": ..., "type": ...}``. The socket lives in
the repository store (``.hangarfs/run/``), mode 0600; its path is recorded with the writer lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger('hangarfs.control')
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes on Linux

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def socket_path(store_dir: Path, pid: int) -> str:
    """Where a daemon's socket goes: in the store, or under /tmp when that path is too long for a socket."""
    path = str(store_dir / 'run' / f'mount-{pid}.sock')
    if len(path.encode()) <= MAX_UNIX_PATH:
        return path
    digest = hashlib.blake2b(str(store_dir).encode(), digest_size=8).hexdigest()
    return str(Path(tempfile.gettempdir()) / f'hangarfs-{os.getuid()}' / f'{digest}-{pid}.sock')


class ControlServer:
    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.path.exists(path):
            os.unlink(path)  # left by a daemon that was killed
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old_umask)
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._serve, name='hangarfs-control', daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    request = json.loads(_read_line(conn))
                    reply = self.handler(request)
                except Exception as err:  # a bad request must not stop the daemon
                    log.exception('control request failed')
                    reply = {'ok': False, 'error': str(err), 'type': type(err).__name__}
                try:
                    conn.sendall(json.dumps(reply).encode() + b'\n')
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _read_line(conn: socket.socket) -> bytes:
    data = b''
    while not data.endswith(b'\n'):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def request(path: str, message: dict[str, Any], timeout: float = 3600.0) -> dict[str, Any]:
    """Send one request to a daemon and return its reply (OSError if it cannot be reached)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b'\n')
        reply = json.loads(_read_line(sock) or b'{}')
    if not isinstance(reply, dict):
        raise OSError(f'unexpected reply from {path}: {reply!r}')
    return reply
