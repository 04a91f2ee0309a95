"""Waits for the agent while enforcing the run's deadline and watching the runner's side of ctx.sock.

So that no sandbox outlives its runner: the runner sends `deadlineMs` and `runnerGraceMs` in the
bootstrap (both optional; without them the supervisor just waits, as before). At the deadline the
agent is stopped as a runner's stop would (its group gets SIGTERM, then SIGKILL after stopTimeoutMs).
The supervisor keeps its connection open; the runner never writes on it after `started`, so EOF
means the runner closed it or died (the kernel closes a dead process's sockets). A live runner
takes a new connection at once; a dead one's socket refuses it, and a restarted runner listens
elsewhere (a sandbox of a runner that restarted is gone for the new one). Once no connection could
be made for runnerGraceMs, the agent is stopped the same way.
"""
import os
import select
import time

import _socket

from spawn import exit_code_of
from state import STATE, stop_agent

RECONNECT_INTERVAL_S = 1.0


def _connect(path):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return sock
    except OSError:
        sock.close()
        return None


def _millis(bootstrap, key, minimum):
    value = bootstrap.get(key)
    if type(value) is not int or value < minimum:
        return None
    return value / 1000


def limits_of(bootstrap, received_at):
    """`(deadline, grace in seconds)`, each None when the runner sent none; the deadline is on the
    monotonic clock, counted from `received_at`, when the bootstrap arrived."""
    deadline_s = _millis(bootstrap, 'deadlineMs', 0)
    deadline = None if deadline_s is None else received_at + deadline_s
    return deadline, _millis(bootstrap, 'runnerGraceMs', 1)


class _Watch:
    def __init__(self, sock, grace_s, socket_path, log):
        self.sock = sock
        self.grace_s = grace_s
        self.socket_path = socket_path
        self.log = log
        self.lost_at = None
        self.next_try = None
        self.gave_up = False

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b''
        if data:
            return  # Nothing is expected after `started`; whatever comes is dropped.
        self.sock.close()
        self.sock = None
        self.lost_at = self.next_try = time.monotonic()

    def tick(self, now):
        """Reconnects while in grace; stops the agent once the grace is over."""
        if self.lost_at is None or self.gave_up:
            return
        if now - self.lost_at >= self.grace_s:
            self.gave_up = True
            self.log(f'the runner is gone (no answer on ctx.sock for {self.grace_s:.0f} s): stopping the agent')
            stop_agent()
            return
        if now >= self.next_try:
            self.sock = _connect(self.socket_path)
            if self.sock is not None:
                self.lost_at = None
            else:
                self.next_try = now + RECONNECT_INTERVAL_S

    def wake_at(self):
        if self.lost_at is None or self.gave_up:
            return None
        return min(self.next_try, self.lost_at + self.grace_s)

    def close(self):
        if self.sock is not None:
            self.sock.close()


def wait_supervised(pid, link, deadline, grace_s, socket_path, log):
    """The agent's exit code, once it exits; stops it at `deadline` (monotonic) or when the runner is gone."""
    watch = _Watch(link.sock, grace_s, socket_path, log) if grace_s is not None else None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return exit_code_of(status)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                deadline = None
                stop_agent()
            if watch:
                watch.tick(now)
            wakes = [t for t in (deadline, watch.wake_at() if watch else None) if t is not None]
            timeout = max(0.0, min(wakes) - time.monotonic()) if wakes else None
            fds = [STATE.wakeup_r] + ([watch.sock] if watch and watch.sock is not None else [])
            # SIGCHLD (the agent's exit) and SIGTERM both write to the wakeup pipe.
            ready, _, _ = select.select(fds, [], [], timeout)
            if STATE.wakeup_r in ready:
                os.read(STATE.wakeup_r, 512)
            if watch and watch.sock is not None and watch.sock in ready:
                watch.on_readable()
    finally:
        if watch and watch.sock is not link.sock:
            watch.close()
