"""What the signal handlers act on: the agent's process group once it runs, a pending stop before.

SIGTERM or SIGINT before the agent runs interrupts whatever waits (bootstrap, files, desktop)
through the wakeup pipe; once it runs, its group gets SIGTERM, then SIGKILL after stopTimeoutMs
(a stuck agent cannot hold the sandbox open).
"""
import os

import _signal


class _State:
    agent_pid = None
    # Set once the agent was spawned: only then is there an exit to hold (agent.wait_exit_turn).
    agent_ran = False
    stop_timeout_s = 10.0
    kill_armed = False
    pending_signal = None
    wakeup_r = -1
    # From the bootstrap: presented in `supervisor_resume` after a reconnect (watch.py).
    supervisor_token = None


STATE = _State()


def signal_group(pid, signum):
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # The group is already gone.


def _on_stop(signum, _frame):
    pid = STATE.agent_pid
    if pid is None:
        STATE.pending_signal = signum
        return
    signal_group(pid, _signal.SIGTERM)
    if not STATE.kill_armed:
        STATE.kill_armed = True
        _signal.setitimer(_signal.ITIMER_REAL, STATE.stop_timeout_s)


def stop_agent():
    """The supervisor's own stop (deadline, runner gone): exactly what a SIGTERM from the runner does."""
    _on_stop(_signal.SIGTERM, None)


def _on_child(_signum, _frame):
    pass  # Only here so that SIGCHLD writes to the wakeup pipe and wakes a select.


def _on_alarm(_signum, _frame):
    if STATE.agent_pid is not None:
        signal_group(STATE.agent_pid, _signal.SIGKILL)


def install_signal_handlers():
    r, w = os.pipe()
    os.set_blocking(w, False)
    STATE.wakeup_r = r
    _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _signal.signal(_signal.SIGTERM, _on_stop)
    _signal.signal(_signal.SIGINT, _on_stop)
    _signal.signal(_signal.SIGALRM, _on_alarm)


def watch_children():
    """Makes the agent's exit wake a select through the wakeup pipe (only the supervised wait needs it)."""
    _signal.signal(_signal.SIGCHLD, _on_child)


def forward_pending():
    """Once the agent runs: a stop that came while it was being spawned reaches it now."""
    signum, STATE.pending_signal = STATE.pending_signal, None
    if signum is not None:
        _on_stop(signum, None)
