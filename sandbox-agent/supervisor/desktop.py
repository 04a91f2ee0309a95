"""The desktop of a browser_login sandbox, started through the Node helper desktop.mjs.

The helper (sandbox-agent/desktop-main.ts) starts Xtigervnc, the window manager and Chromium,
prints one JSON line, `{"env": {...}}` once they answer or `{"error": "..."}`, and stops them all
on SIGTERM. It gets the container's environment, never the agent's: no credential reaches it.
"""
import os
import time

import _signal

import wirejson
from ctxlink import LineReader
from spawn import exit_code_of, spawn

# Beside this file in the image; GREXAL_DESKTOP_HELPER is for tests (the container's environment is the
# runner's, never the agent's).
HELPER = os.environ.get('GREXAL_DESKTOP_HELPER') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'desktop.mjs'
)
# The helper's own deadline is 60 s; Node's boot comes on top.
READY_TIMEOUT_S = 75.0
STOP_GRACE_S = 3.0


class DesktopHelper:
    def __init__(self, pid, stdout_r):
        self.pid = pid
        self.stdout_r = stdout_r
        self.exited = False

    @classmethod
    def start(cls, width, height):
        r, w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1),
        ]
        try:
            pid = spawn(['node', HELPER, str(int(width)), str(int(height))], dict(os.environ), actions)
        finally:
            os.close(w)
        return cls(pid, r)

    def wait_ready(self):
        """The desktop's environment for the agent (DISPLAY, GREXAL_CDP_URL); raises why not."""
        reader = LineReader(lambda size: os.read(self.stdout_r, size))
        line = reader.line(self.stdout_r, time.monotonic() + READY_TIMEOUT_S)
        if line is None:
            raise RuntimeError(f'the desktop did not start: {self._why_silent()}')
        try:
            message = wirejson.loads(line)
        except ValueError:
            raise RuntimeError('the desktop helper printed a line that is not JSON') from None
        if 'error' in message:
            raise RuntimeError(f'the desktop did not start: {message["error"]}')
        return {str(k): str(v) for k, v in message['env'].items()}

    def _why_silent(self):
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return f'no answer within {READY_TIMEOUT_S:.0f} s'
        self.exited = True
        return f'its helper exited with {exit_code_of(status)}'

    def stop(self):
        """SIGTERM (the helper stops every desktop process), SIGKILL after STOP_GRACE_S."""
        os.close(self.stdout_r)
        if self.exited:
            return
        try:
            os.kill(self.pid, _signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                return
            time.sleep(0.02)
        os.kill(self.pid, _signal.SIGKILL)
        os.waitpid(self.pid, 0)
