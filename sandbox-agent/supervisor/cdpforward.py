"""GREXAL_CDP_URL inside the sandbox: 127.0.0.1:<port> forwarded, byte for byte, to the runner's relay.

The runner's CDP relay (runner/browser/relay.ts) listens on /run/grexal/cdp.sock; agents and their
libraries expect Chromium's TCP endpoint (`http://127.0.0.1:9222`). This process bridges the two:
it listens on the sandbox's loopback and, for each connection it accepts, connects to the socket
and copies bytes both ways until either side ends. It parses nothing: HTTP, WebSocket and CDP are
the relay's business, so that is where bad input is judged.

It runs as its own process (the supervisor spawns it with the container's environment, never the
agent's, before the agent starts), so a flood of connections never delays the supervisor's own
loop, and the supervisor's signal handlers stay the only ones it has. `CdpForwarder` is the
supervisor's handle on it; `main` is the process, which takes its listening socket on fd 3.
"""
import os
import sys
import time

STOP_GRACE_S = 1.0
# The listening socket, as the forwarder process finds it.
LISTEN_FD = 3
# At most this many agent connections at once (Playwright opens one or two); more are closed.
MAX_CONNECTIONS = 64
CHUNK_BYTES = 64 * 1024
# A side that reads this far behind the other is not read from until it catches up.
MAX_PENDING_BYTES = 1024 * 1024


class CdpForwarder:
    """The supervisor's side: bind, spawn, stop."""

    def __init__(self, pid, port):
        self.pid = pid
        # The agent's environment.
        self.env = {'GREXAL_CDP_URL': f'http://127.0.0.1:{port}'}

    @classmethod
    def start(cls, port, socket_path):
        """The port is bound here, before the agent starts, and handed to the forwarder: the
        kernel queues the agent's connections until the forwarder accepts them, so the agent's
        start does not wait for a Python process's (~20 ms). Raises why not."""
        import _socket

        from spawn import spawn

        port = int(port)
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            try:
                listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                listener.bind(('127.0.0.1', port))
                listener.listen(MAX_CONNECTIONS)
            except OSError as error:
                raise RuntimeError(
                    f'the CDP forwarder did not start: cannot listen on 127.0.0.1:{port}: {error.strerror or error}'
                ) from None
            # Closed here right after the spawn, before the agent's: only the forwarder holds it.
            os.set_inheritable(listener.fileno(), True)
            actions = [(os.POSIX_SPAWN_OPEN, fd, '/dev/null', os.O_RDWR, 0) for fd in (0, 1)]
            if listener.fileno() != LISTEN_FD:
                actions.append((os.POSIX_SPAWN_DUP2, listener.fileno(), LISTEN_FD))
            argv = [sys.executable, '-I', '-S', os.path.abspath(__file__), socket_path]
            pid = spawn(argv, dict(os.environ), actions)
        finally:
            listener.close()
        return cls(pid, port)

    def stop(self):
        import _signal

        try:
            os.kill(self.pid, _signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                return
            time.sleep(0.01)
        os.kill(self.pid, _signal.SIGKILL)
        os.waitpid(self.pid, 0)


class Pipe:
    """One direction of one connection: what was read from `src` and not yet written to `dst`."""

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.pending = bytearray()
        self.eof = False
        self.shut = False


def send_pending(sock, pipe):
    """Sends what `sock` takes now of `pipe`'s pending bytes; False once the socket is gone."""
    try:
        sent = sock.send(pipe.pending)
        del pipe.pending[:sent]
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        return False
    return True


def serve(listener, socket_path):
    import selectors
    import socket

    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    # socket → (its connection's two Pipes, the peer socket)
    conns = {}

    def close_pair(sock):
        entry = conns.pop(sock, None)
        if entry is None:
            return
        peer = entry[1]
        conns.pop(peer, None)
        for s in (sock, peer):
            try:
                selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()

    def accept():
        try:
            client, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(conns) >= 2 * MAX_CONNECTIONS:
            client.close()
            return
        relay = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The relay answers its socket at once; it is the runner's, on this machine.
            relay.settimeout(5.0)
            relay.connect(socket_path)
        except OSError:
            relay.close()
            client.close()
            return
        for s in (client, relay):
            s.setblocking(False)
        up, down = Pipe(client, relay), Pipe(relay, client)
        conns[client] = ((up, down), relay)
        conns[relay] = ((down, up), client)
        selector.register(client, selectors.EVENT_READ)
        selector.register(relay, selectors.EVENT_READ)

    def pump(sock, mask):
        (outgoing, incoming), peer = conns[sock]
        if mask & selectors.EVENT_READ and not outgoing.eof:
            try:
                data = sock.recv(CHUNK_BYTES)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                return close_pair(sock)
            if data == b'':
                outgoing.eof = True
            elif data:
                outgoing.pending += data
        if mask & selectors.EVENT_WRITE and incoming.pending and not send_pending(sock, incoming):
            return close_pair(sock)
        # Flush toward the peer at once: most messages fit in one send.
        if outgoing.pending and not send_pending(peer, outgoing):
            return close_pair(sock)
        # A direction whose source ended and whose bytes are all through ends at its destination too
        # (either direction can finish here: its last bytes may go out on a write of this socket).
        for pipe in (outgoing, incoming):
            if pipe.eof and not pipe.pending and not pipe.shut:
                pipe.shut = True
                try:
                    pipe.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if outgoing.eof and incoming.eof and not outgoing.pending and not incoming.pending:
            return close_pair(sock)
        update(sock)
        update(peer)

    def update(sock):
        if sock not in conns:
            return
        (outgoing, incoming), _ = conns[sock]
        events = 0
        if not outgoing.eof and len(outgoing.pending) < MAX_PENDING_BYTES:
            events |= selectors.EVENT_READ
        if incoming.pending:
            events |= selectors.EVENT_WRITE
        registered = sock in selector.get_map()
        if events and registered:
            selector.modify(sock, events)
        elif events:
            selector.register(sock, events)
        elif registered:
            selector.unregister(sock)

    while True:
        for key, mask in selector.select():
            if key.fileobj is listener:
                accept()
            elif key.fileobj in conns:
                pump(key.fileobj, mask)


def main():
    import _signal

    # SIGTERM from the supervisor ends the process (default disposition); Ctrl-C is not ours.
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    import socket

    socket_path = sys.argv[1]
    try:
        listener = socket.socket(fileno=LISTEN_FD)
    except OSError as error:
        sys.stderr.write(f'grexal: the CDP forwarder has no listening socket on fd {LISTEN_FD}: {error}\n')
        return 1
    serve(listener, socket_path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
