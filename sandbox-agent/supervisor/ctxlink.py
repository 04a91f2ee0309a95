"""The supervisor's own line to the runner: one request at a time, NDJSON over ctx.sock."""
import os
import time

import _socket
import select

import wirejson
from state import STATE

MAX_LINE_BYTES = 16 * 1024 * 1024


class CtxError(Exception):
    pass


class Interrupted(Exception):
    """SIGTERM or SIGINT came before the agent ran."""

    def __init__(self, signum):
        super().__init__(f'signal {signum}')
        self.signum = signum


def wait_readable(fd, deadline):
    """True once `fd` is readable, False at `deadline` (monotonic; None: never); a stop interrupts."""
    while True:
        if STATE.pending_signal is not None and STATE.agent_pid is None:
            raise Interrupted(STATE.pending_signal)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd, STATE.wakeup_r], [], [], timeout)
        if STATE.wakeup_r in ready:
            os.read(STATE.wakeup_r, 512)
        if fd in ready:
            return True
        if not ready:
            return False


class LineReader:
    """Lines from a file descriptor, refusing one over MAX_LINE_BYTES."""

    def __init__(self, read):
        self.read = read
        self.buffered = bytearray()

    def line(self, fd, deadline=None):
        """The next line (str), or None on end of stream or at `deadline`."""
        while True:
            end = self.buffered.find(b'\n')
            if end >= 0:
                line = bytes(self.buffered[:end])
                del self.buffered[: end + 1]
                return line.decode('utf-8')
            if len(self.buffered) > MAX_LINE_BYTES:
                raise CtxError(f'protocol line over {MAX_LINE_BYTES} bytes')
            if not wait_readable(fd, deadline):
                return None
            chunk = self.read(1 << 20)
            if not chunk:
                return None
            self.buffered += chunk


class CtxLink:
    def __init__(self, sock):
        self.sock = sock
        self.reader = LineReader(sock.recv)
        self.next_id = 1

    @classmethod
    def open(cls, path):
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as error:
            sock.close()
            raise CtxError(f'connect: {error.strerror or error}') from None
        return cls(sock)

    def send(self, method, params):
        request_id = self.next_id
        self.next_id += 1
        self.sock.sendall(f'{wirejson.dumps({"id": request_id, "method": method, "params": params})}\n'.encode())
        return request_id

    def answer(self, request_id, deadline=None):
        """The result of request `request_id`; CtxError for an error answer or a closed line."""
        while True:
            line = self.reader.line(self.sock.fileno(), deadline)
            if line is None:
                raise CtxError('the runner closed ctx.sock')
            if not line:
                continue
            try:
                message = wirejson.loads(line)
            except ValueError:
                raise CtxError('the runner sent a line that is not JSON') from None
            if not isinstance(message, dict) or message.get('id') != request_id:
                continue
            error = message.get('error')
            if error is not None:
                raise CtxError(f'{error.get("code")}: {error.get("message")}')
            return message.get('result')

    def call(self, method, params):
        return self.answer(self.send(method, params))

    def close(self):
        self.sock.close()
