"""A TCP proxy on 127.0.0.1 that breaks connections on purpose, for failure tests of remotes.

``FaultyProxy(upstream_port)`` forwards every connection to the upstream server. Tests then:

- ``drop_response_to(b'PUT ', b'/refs ')``: the next request whose first line starts with the method
  and contains the path reaches the server, but its response is thrown away and the client's
  connection closed: a lost acknowledgement;
- ``stop()``: close the listening socket and every open connection (the endpoint goes away);
- ``stop_after(nbytes)``: the same, once ``nbytes`` more bytes of responses went through (the
  endpoint dies in the middle of a transfer).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class FaultyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._drop: tuple[bytes, bytes] | None = None
        self.dropped = 0
        self._stop_after: int | None = None
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def drop_response_to(self, method: bytes, path_part: bytes) -> None:
        with self._lock:
            self._drop = (method, path_part)

    def stop_after(self, nbytes: int) -> None:
        with self._lock:
            self._stop_after = nbytes

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(('127.0.0.1', self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            armed = threading.Event()
            threading.Thread(target=self._pump_up, args=(client, upstream, armed), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(upstream, client, armed), daemon=True).start()

    def _pump_up(self, src: socket.socket, dst: socket.socket, armed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    drop = self._drop
                    first_line = data.split(b'\r\n', 1)[0]
                    if drop and first_line.startswith(drop[0]) and drop[1] in first_line:
                        self._drop = None
                        armed.set()
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _pump_down(self, src: socket.socket, dst: socket.socket, armed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if armed.is_set():
                    with self._lock:
                        self.dropped += 1
                    break  # the server answered; the client never hears it
                dst.sendall(data)
                with self._lock:
                    if self._stop_after is not None:
                        self._stop_after -= len(data)
                        if self._stop_after <= 0:
                            self._stop_after = None
                            threading.Thread(target=self.stop, daemon=True).start()
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
