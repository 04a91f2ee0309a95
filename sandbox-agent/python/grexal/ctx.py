"""Client for the Grexal ctx socket (/run/grexal/ctx.sock), standard library only.

Each call opens its own Unix-socket connection, sends one newline-delimited JSON request
``{"id", "method", "params"}`` and reads the answer ``{"id", "result"}`` or
``{"id", "error": {"code", "message"}}``. That keeps the client thread-safe and stateless; a
connection costs microseconds. The protocol is documented in docs/ctx-protocol.md.
"""

import itertools
import json
import os
import socket

CTX_SOCKET_PATH = "/run/grexal/ctx.sock"
"""Where the runner serves the socket inside every sandbox; GREXAL_CTX_SOCKET overrides it."""

CONNECT_TIMEOUT_S = 60.0
"""How long connect() waits for an answer (an OAuth refresh may take a few seconds)."""

TAKEOVER_DEFAULT_TIMEOUT_MS = 600_000
_TAKEOVER_MARGIN_S = 30.0
_MAX_LINE_BYTES = 16 * 1024 * 1024

_ids = itertools.count(1)


class CtxError(Exception):
    """A failed ctx call.

    ``code`` is the protocol's ("not_declared", "not_connected", "broken", "revoked",
    "takeover_cancelled", "takeover_expired", ...) or one of the client's own:
    "unavailable" (the socket cannot be reached: not inside a Grexal sandbox?) or "timeout".
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self):
        return "CtxError(code=%r, message=%r)" % (self.code, self.message)


def _socket_path():
    return os.environ.get("GREXAL_CTX_SOCKET") or CTX_SOCKET_PATH


def _unavailable(path, why):
    return CtxError(
        "unavailable",
        "The Grexal ctx socket %s is unavailable (%s). Is this running inside a Grexal sandbox?" % (path, why),
    )


def _read_answer(sock, request_id, path):
    buffered = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise _unavailable(path, "the runner closed the connection")
        buffered += chunk
        if len(buffered) > _MAX_LINE_BYTES:
            raise _unavailable(path, "the answer is too long")
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                message = json.loads(line.decode("utf-8"))
            except ValueError:
                raise CtxError("internal", "The runner sent an answer that is not JSON.") from None
            if not isinstance(message, dict) or message.get("id") != request_id:
                continue
            error = message.get("error")
            if error is not None:
                raise CtxError(str(error.get("code")), str(error.get("message")))
            return message.get("result")


def call(method, params, timeout=None):
    """Sends one request and returns its result; raises CtxError. ``timeout`` is in seconds."""
    path = _socket_path()
    request_id = next(_ids)
    line = (json.dumps({"id": request_id, "method": method, "params": params}) + "\n").encode("utf-8")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(line)
            return _read_answer(sock, request_id, path)
        except socket.timeout:
            raise CtxError("timeout", "ctx.%s had no answer within %s s." % (method, timeout)) from None
        except OSError as error:
            raise _unavailable(path, error.strerror or str(error)) from None
    finally:
        sock.close()


_WAIT_DEFAULT = object()


def connect(connection_id, timeout=_WAIT_DEFAULT, wait=True):
    """Returns the credential of a connection declared in grexal.json, as a dict:

    - secret_input: {"mode", "fields": {key: value}}
    - oauth_redirect: {"mode", "access_token", "token_type", "expires_at", "scope"}
    - file_upload: {"mode", "dir", "files": {name: path}}
    - browser_login: {"mode"}

    A broken connection makes the call wait until the user re-authorises it, up to the
    connection's reconnect timeout (10 minutes by default): the runner bounds that wait, so by
    default the client sets no limit of its own then. ``wait=False`` answers "broken" at once, and
    defaults ``timeout`` to CONNECT_TIMEOUT_S.
    """
    if timeout is _WAIT_DEFAULT:
        timeout = None if wait else CONNECT_TIMEOUT_S
    params = {"connectionId": connection_id}
    if not wait:
        params["wait"] = False
    return call("connect", params, timeout)


def request_takeover(reason, connection_id=None, timeout_ms=None, until=None):
    """Asks the user to take over the sandbox's browser (to log in, say) and blocks until they
    press Done, or until `until` holds: {"url": "<glob>"} and/or {"cookie": "<name>"}, the
    browser showing a matching page or holding that cookie (see docs/takeover.md). Raises
    CtxError "takeover_cancelled" or "takeover_expired" otherwise, "invalid_request" for a bad
    `until`."""
    params = {"reason": reason}
    if connection_id is not None:
        params["connectionId"] = connection_id
    if timeout_ms is not None:
        params["timeoutMs"] = timeout_ms
    if until is not None:
        params["until"] = until
    wait_s = (timeout_ms or TAKEOVER_DEFAULT_TIMEOUT_MS) / 1000.0 + _TAKEOVER_MARGIN_S
    return call("request_takeover", params, wait_s)


_BROWSER_POLL_S = 0.1


def _browser_version(base):
    import urllib.request

    try:
        with urllib.request.urlopen(base.rstrip("/") + "/json/version", timeout=2.0) as answer:
            if answer.status != 200:
                return None
            version = json.loads(answer.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return version if isinstance(version, dict) and version.get("webSocketDebuggerUrl") else None


def wait_for_browser(timeout=30.0):
    """Blocks until the sandbox's browser answers at GREXAL_CDP_URL again and returns what its
    /json/version says. A takeover cuts the agent's CDP connections and refuses new ones until it
    ends (docs/browser.md): after request_takeover() returns, call this, then connect again.
    Raises CtxError "unavailable" (no GREXAL_CDP_URL) or "timeout"."""
    import time

    base = os.environ.get("GREXAL_CDP_URL")
    if not base:
        raise CtxError("unavailable", "GREXAL_CDP_URL is not set: this sandbox has no browser.")
    deadline = time.monotonic() + timeout
    while True:
        version = _browser_version(base)
        if version is not None:
            return version
        if time.monotonic() >= deadline:
            raise CtxError("timeout", f"The browser at {base} did not answer within {timeout:g} s.")
        time.sleep(_BROWSER_POLL_S)
