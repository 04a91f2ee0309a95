"""Spawns the agent with its environment, reports it to the runner, and mirrors its exit."""
import os
import time

import _signal

from spawn import spawn, wait_exit
from state import STATE, forward_pending, signal_group, watch_children
from watch import wait_supervised

STARTED_ANSWER_WAIT_S = 2.0
# The runner answers `exited` within its own bound (runner/sandbox/starts-first.ts, 1 s); this one
# is for a runner that does not answer at all.
EXIT_TURN_WAIT_S = 3.0
# The kernel's OOM killer takes the agent's processes (they inherit it) before this one, in the
# sandbox's memory cgroup and on the host. Without it, a sandbox filled through tmpfs (memory no
# process holds) lost its supervisor, the largest process there, and the agent ran on, unwatched,
# until the container went down. Raising a score takes no privilege.
AGENT_OOM_SCORE_ADJ = b'1000'


def spawn_error(command, error):
    """`(exit code, message)` for an agent that could not be spawned."""
    if error.errno == 2:  # ENOENT
        return 127, f'command not found: {command}'
    if error.errno == 13:  # EACCES
        return 126, f'permission denied: {command}'
    return 126, f'cannot start {command}: {error.strerror or error}'


def report_started(link, params, keep_open=False):
    """Fire and forget: the runner only records it. The answer is awaited briefly, then the line
    closes, unless it is kept to watch the runner (watch.py)."""
    try:
        request_id = link.send('started', params)
        link.answer(request_id, time.monotonic() + STARTED_ANSWER_WAIT_S)
    except Exception:
        pass
    if not keep_open:
        link.close()


def spawn_first_for_oom(argv, env):
    """Spawns the agent born with oom_score_adj 1000, so that a child it forks at once inherits it
    (writing the child's score after the spawn raced those). The supervisor raises its own score for
    the spawn and lowers it back, which takes no privilege down to the score the runtime set at the
    container's start; between the two, it is as exposed as the agent. A runtime without the file
    (or refusing it) leaves the default."""
    own = write_oom_score_adj(AGENT_OOM_SCORE_ADJ, read_back=True)
    try:
        return spawn(argv, env)
    finally:
        if own is not None:
            write_oom_score_adj(own)


def write_oom_score_adj(value, read_back=False):
    """Writes the supervisor's own score; with `read_back`, returns the one it replaced (None when
    nothing was written)."""
    try:
        with open('/proc/self/oom_score_adj', 'r+b', buffering=0) as file:
            before = file.read().strip() if read_back else None
            file.seek(0)
            file.write(value)
            return before
    except OSError:
        return None


def start(bootstrap, extra_env, log):
    """The agent's pid, or `(code, message)` when it could not be started."""
    argv = [str(a) for a in bootstrap['command']]
    # The container's environment, then the injected one: for the agent only, never os.environ.
    env = {**os.environ, **bootstrap.get('env', {}), **extra_env}
    cwd = bootstrap.get('cwd')
    try:
        if cwd:
            os.chdir(cwd)
    except OSError as error:
        return None, (126, f'cannot start {argv[0]}: no directory {cwd} ({error.strerror})')
    try:
        pid = spawn_first_for_oom(argv, env)
    except OSError as error:
        return None, spawn_error(argv[0], error)
    return pid, None


def run_agent(bootstrap, extra_env, link, log, limits=(None, None), socket_path=None):
    """Runs the agent to completion and returns the supervisor's exit code.

    `limits` is `(monotonic deadline, runner grace in seconds)` from watch.limits_of; with neither,
    the agent is simply waited for, as with older runners."""
    deadline, grace_s = limits
    if STATE.pending_signal is not None:
        return 128 + STATE.pending_signal
    STATE.stop_timeout_s = max(0.001, bootstrap.get('stopTimeoutMs', 10_000) / 1000)
    if deadline is not None or grace_s is not None:
        watch_children()
    pid, failure = start(bootstrap, extra_env, log)
    if failure:
        code, message = failure
        log(message)
        report_started(link, {'error': message})
        return code
    STATE.agent_pid = pid
    STATE.agent_ran = True
    forward_pending()
    report_started(link, {'pid': pid}, keep_open=grace_s is not None)
    if deadline is None and grace_s is None:
        code = wait_exit(pid)
    else:
        code = wait_supervised(pid, link, deadline, grace_s, socket_path, log)
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    STATE.agent_pid = None
    # Orphans the agent left behind in its group go with it.
    signal_group(pid, _signal.SIGKILL)
    return code


def kill_leftovers():
    """Kills what the agent left outside its group (a `setsid` child), as the container's end would:
    nothing of the run lives on while the container waits for its turn to go. Only under the
    image's tini, our parent as pid 1, where kill(-1) reaches this container's processes alone."""
    try:
        with open('/proc/1/comm', 'rb') as file:
            init = file.read().strip()
    except OSError:
        return
    if os.getppid() != 1 or init != b'tini':
        return
    try:
        os.kill(-1, _signal.SIGKILL)  # every process we may signal but ourselves and pid 1
    except OSError:
        pass


def wait_exit_turn(link):
    """Holds the (empty) container until the runner says it may go: the runner lets the runs that
    are starting go first, the exits of others being work on the same cores. An older runner
    (`unknown_method`), a closed line or a stop ends the wait at once."""
    kill_leftovers()
    try:
        link.answer(link.send('exited', {}), time.monotonic() + EXIT_TURN_WAIT_S)
    except Exception:
        pass
