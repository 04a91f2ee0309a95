"""posix_spawn with the agent's PATH: subprocess would cost ~5 ms of imports on every start."""
import errno
import os

import _signal

# Python ignores SIGPIPE and SIGXFSZ; a child must start with every disposition at its default.
DEFAULT_SIGNALS = (
    _signal.SIGPIPE,
    _signal.SIGXFSZ,
    _signal.SIGTERM,
    _signal.SIGINT,
    _signal.SIGALRM,
    _signal.SIGCHLD,
)


def find_executable(command, env):
    """The path to run for `command`, looked up on the PATH of `env` like execvp; OSError if none."""
    if '/' in command:
        return command
    denied = False
    for directory in os.get_exec_path(env):
        path = os.path.join(directory or '.', command)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = True
    code = errno.EACCES if denied else errno.ENOENT
    raise OSError(code, os.strerror(code), command)


def spawn(argv, env, file_actions=()):
    """Starts `argv` as the leader of its own session and process group; returns its pid."""
    path = find_executable(argv[0], env)
    options = {'file_actions': list(file_actions), 'setsid': True, 'setsigmask': (), 'setsigdef': DEFAULT_SIGNALS}
    try:
        return os.posix_spawn(path, argv, env, **options)
    except OSError as error:
        if error.errno != errno.ENOEXEC:
            raise
    # Like execvp: an executable without a #! line is a shell script.
    return os.posix_spawn('/bin/sh', ['sh', path, *argv[1:]], env, **options)


def exit_code_of(status):
    """The shell's convention: the exit code, or 128+n for a death by signal n."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def wait_exit(pid):
    """Waits for `pid` (signal handlers run meanwhile) and returns its exit code."""
    _, status = os.waitpid(pid, 0)
    return exit_code_of(status)
