"""The agent's supervisor, inside every sandbox under tini (`tini -g -- python3 -I -S supervisor.py`).

It takes the bootstrap from the runner over ctx.sock, lays out the credential files, forwards
GREXAL_CDP_URL to the runner's CDP relay when asked, spawns the agent with its environment in
its own process group, and mirrors the agent's exit. Only the agent and its children ever hold the
injected variables: tini (pid 1) and this process keep the container's own environment (os.environ
is never changed; the agent's environment is passed to posix_spawn).

Standard library only, and only its C-level modules on the common path (_socket, _signal, _json,
select): the interpreter starts in ~14 ms, where Node took ~150 ms and ~35 MiB.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _signal  # noqa: E402  (the `signal` wrapper imports enum: ~5 ms)

from ctxlink import CtxLink, CtxError, Interrupted  # noqa: E402
from state import STATE, install_signal_handlers  # noqa: E402

run_agent = limits_of = wait_exit_turn = None


def load_rest():
    """What runs once the bootstrap is answered (~6 ms of imports): loaded while the runner
    prepares the answer (a cold sandbox's network wiring, a pool entry's claim), not before asking."""
    global run_agent, limits_of, wait_exit_turn
    from agent import run_agent, wait_exit_turn
    from watch import limits_of


CTX_SOCKET_PATH = '/run/grexal/ctx.sock'
CDP_SOCKET_PATH = '/run/grexal/cdp.sock'
FILES_ROOT = '/tmp/grexal'
# The supervisor's own failures, distinct from an agent's usual exit codes.
EXIT_BOOTSTRAP_FAILED = 125


def log(line):
    sys.stderr.write(f'grexal: {line}\n')
    sys.stderr.flush()


def prepare(bootstrap):
    """The credential files: everything the agent needs first."""
    files_tar = bootstrap.get('filesTar')
    if files_tar:
        import binascii

        from filechannel import write_files_from_tar

        root = os.environ.get('GREXAL_FILES_ROOT', FILES_ROOT)
        write_files_from_tar(binascii.a2b_base64(files_tar), root)


def supervise(link, bootstrap, limits, socket_path):
    forwarder = None
    try:
        try:
            relay = bootstrap.get('cdpRelay')
            if relay:
                from cdpforward import CdpForwarder

                cdp_socket = os.environ.get('GREXAL_CDP_SOCKET', CDP_SOCKET_PATH)
                forwarder = CdpForwarder.start(relay['port'], cdp_socket)
            prepare(bootstrap)
            # The relayed endpoint is the agent's only way to the browser: a desktop sandbox's
            # display and browser run in a container of their own (docs/browser.md).
            extra_env = forwarder.env if forwarder else {}
        except Interrupted:
            raise
        except Exception as error:
            log(f'the agent was not started: {error}')
            return EXIT_BOOTSTRAP_FAILED
        return run_agent(bootstrap, extra_env, link, log, limits, socket_path)
    except Interrupted as interrupted:
        return 128 + interrupted.signum
    finally:
        if forwarder:
            forwarder.stop()


def main():
    install_signal_handlers()
    socket_path = os.environ.get('GREXAL_CTX_SOCKET', CTX_SOCKET_PATH)
    link = None
    try:
        link = CtxLink.open(socket_path)
        # The image's CMD, if any, arrives as our argv: the default command when the runner sends none.
        request_id = link.send('bootstrap', {'argv': sys.argv[1:]})
        load_rest()
        bootstrap = link.answer(request_id)
        # The deadline counts from the bootstrap's arrival, not from the agent's start.
        limits = limits_of(bootstrap, time.monotonic()) if isinstance(bootstrap, dict) else (None, None)
        if not isinstance(bootstrap, dict) or not bootstrap.get('command'):
            raise CtxError('the bootstrap answer holds no command')
        STATE.supervisor_token = bootstrap.get('supervisorToken')
    except Interrupted as interrupted:
        return 128 + interrupted.signum
    except (CtxError, OSError) as error:
        log(f'cannot bootstrap from the runner at {socket_path}: {error}')
        return EXIT_BOOTSTRAP_FAILED
    try:
        code = supervise(link, bootstrap, limits, socket_path)
        # A runner that keeps the supervisor's line (runnerGraceMs) says when the container goes.
        if limits[1] is not None and STATE.agent_ran:
            wait_exit_turn(link)
        return code
    finally:
        link.close()
        STATE.agent_pid = None
        _signal.setitimer(_signal.ITIMER_REAL, 0)


if __name__ == '__main__':
    sys.exit(main())
