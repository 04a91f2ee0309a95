/**
 * The audit record of connections the kernel forwards (the fast path), read from conntrack: a
 * long-lived python3 helper (stdlib only; Node has no netlink sockets) listens to ctnetlink's
 * NEW, UPDATE and DESTROY events, keeps the flows of watched sandbox addresses that carry the
 * fast-path mark, and reports each once with its byte counters: when it reaches TIME_WAIT or
 * CLOSE (asking the kernel for the counters then, instead of waiting the two minutes of
 * TIME_WAIT for DESTROY), on DESTROY otherwise, and when its sandbox is unwatched (its flows are
 * then deleted from the table, so nothing of a closed sandbox stays forwarded).
 * Counters need net.netfilter.nf_conntrack_acct=1, which the manager turns on.
 * Under a burst larger than its socket buffer the kernel drops events (ENOBUFS); the helper then
 * reads the whole table to take up the flows it missed, and says so (`onLoss`).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CTNETLINK_PY } from '../host/ctnetlink-py.ts';
import { python3 } from '../host/python.ts';

const HELPER = `${CTNETLINK_PY}${String.raw`
import os, select, sys
MARK, RCVBUF = int(sys.argv[1]), int(sys.argv[2])
ev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
try: ev.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE: a busy host's bursts
except OSError: pass
ev.bind((0, 1 | 2 | 4))  # NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY
q = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
q.bind((0, 0))
watched, flows, seq = set(), {}, 0
def messages(data):
    at = 0
    while at + 16 <= len(data):
        length, kind = struct.unpack_from('=IH', data, at)
        if length < 16: break
        yield kind, data[at + 16:at + length]
        at += (length + 3) & ~3
def parse(body):
    a = attrs(body[4:])
    orig = attrs(a.get(1, b''))
    ip, proto = attrs(orig.get(1, b'')), attrs(orig.get(2, b''))
    if proto.get(1) != b'\x06' or 1 not in ip or 2 not in ip: return None
    key = (socket.inet_ntoa(ip[1]), struct.unpack('!H', proto[2])[0], socket.inet_ntoa(ip[2]), struct.unpack('!H', proto[3])[0])
    mark = struct.unpack('!I', a[8])[0] if 8 in a else 0
    state = None
    if 4 in a:
        tcp = attrs(attrs(a[4]).get(1, b''))
        if 1 in tcp: state = tcp[1][0]
    counters = None
    if 9 in a and 10 in a:
        counters = (struct.unpack('!Q', attrs(a[9])[2])[0], struct.unpack('!Q', attrs(a[10])[2])[0])
    return key, mark, state, counters
def request(kind, key, flags):
    global seq
    seq += 1
    src, sport, dst, dport = key
    body = struct.pack('=BBH', socket.AF_INET, 0, 0) + tuple_attr(1, src, dst, sport, dport)
    q.send(struct.pack('=IHHII', 16 + len(body), (1 << 8) | kind, flags, seq, 0) + body)
    for _, reply in messages(q.recv(65536)):
        parsed = parse(reply) if len(reply) > 4 else None
        if parsed: return parsed[3]
    return None
def report(key, counters):
    up, down = counters or ('-', '-')
    print('end', *key, up, down, flush=True)
    flows[key] = True
def dump():
    # The whole IPv4 table (IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP), on a socket of its own.
    d = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    try:
        d.bind((0, 0))
        body = struct.pack('=BBH', socket.AF_INET, 0, 0)
        d.send(struct.pack('=IHHII', 16 + len(body), (1 << 8) | 1, 1 | 0x300, 1, 0) + body)
        table = {}
        while True:
            for kind, body in messages(d.recv(1 << 20)):
                if kind in (2, 3): return table  # NLMSG_ERROR, NLMSG_DONE
                parsed = parse(body)
                if parsed: table[parsed[0]] = parsed
    finally: d.close()
def resync():
    # Events were dropped: what the table holds now is the truth. Marked flows of watched
    # sandboxes missed at NEW are taken up; known flows gone from it ended unseen (no counters).
    try: table = dump()
    except OSError: return
    for key, (_, mark, state, counters) in table.items():
        if key[0] in watched and mark == MARK and key not in flows:
            flows[key] = False
            print('open', *key, flush=True)
            if state in (7, 8): report(key, counters)
    for key in [k for k in flows if k not in table]:
        if not flows[key]: report(key, None)
        del flows[key]
    print('lost', flush=True)
def on_event(kind, body):
    parsed = parse(body)
    if not parsed: return
    key, mark, state, counters = parsed
    if key[0] not in watched: return
    if kind & 0xff == 0:
        if key not in flows:
            if mark != MARK: return
            flows[key] = False
            print('open', *key, flush=True)
        elif not flows[key] and state in (7, 8):  # TIME_WAIT, CLOSE: the flow is over
            try: report(key, request(1, key, 1))  # IPCTNL_MSG_CT_GET
            except OSError: report(key, None)
    elif kind & 0xff == 2 and key in flows:
        if not flows[key]: report(key, counters)
        del flows[key]
def unwatch(address):
    watched.discard(address)
    for key in [k for k in flows if k[0] == address]:
        try:
            if not flows[key]: report(key, request(1, key, 1))
            request(2, key, 1 | 4)  # IPCTNL_MSG_CT_DELETE, NLM_F_ACK
        except OSError:
            if not flows[key]: report(key, None)
        flows.pop(key, None)
    print('unwatched', address, flush=True)
pending = b''
while True:
    ready, _, _ = select.select([ev, 0], [], [])
    if ev in ready:
        try: data = ev.recv(1 << 20)
        except OSError:  # ENOBUFS: events lost under a burst
            resync()
            continue
        for kind, body in messages(data): on_event(kind, body)
    if 0 in ready:
        chunk = os.read(0, 65536)
        if not chunk: break
        pending += chunk
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            parts = line.decode().split()
            if len(parts) == 2 and parts[0] == 'watch': watched.add(parts[1])
            elif len(parts) == 2 and parts[0] == 'unwatch': unwatch(parts[1])
`}`;

export interface KernelFlow {
  address: string;
  port: number;
  /** IP bytes as conntrack counts them (headers included), sandbox to destination. */
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  /** The flow ended while events were being dropped, or its entry was gone: bytes are unknown (0). */
  countersLost?: true;
}

export interface KernelFlowsOptions {
  /** The event socket's buffer (SO_RCVBUFFORCE). Default 8 MiB; tests make it small. */
  receiveBufferBytes?: number;
  /** Events were dropped: flows that opened and closed inside that window are not recorded. */
  onLoss?: () => void;
}

const UNWATCH_TIMEOUT_MS = 2_000;
const DEFAULT_RECEIVE_BUFFER = 8 << 20;

export class KernelFlows {
  private helper?: ChildProcessWithoutNullStreams;
  private readonly watchers = new Map<string, (flow: KernelFlow) => void>();
  private readonly opened = new Map<string, number>();
  private readonly unwatching = new Map<string, () => void>();

  constructor(
    private readonly mark: number,
    private readonly options: KernelFlowsOptions = {},
  ) {}

  private start(): ChildProcessWithoutNullStreams {
    if (this.helper) return this.helper;
    const buffer = this.options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER;
    const helper = spawn(
      python3() ?? 'python3',
      ['-I', '-S', '-c', HELPER, String(this.mark), String(buffer)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const gone = () => {
      if (this.helper !== helper) return;
      this.helper = undefined;
      for (const done of this.unwatching.values()) done();
      this.unwatching.clear();
    };
    helper.on('error', gone);
    helper.on('exit', gone);
    helper.stdin.on('error', () => {});
    helper.stderr.resume();
    createInterface({ input: helper.stdout }).on('line', (line) => this.onLine(line));
    helper.unref();
    (helper.stdout as unknown as { unref?: () => void }).unref?.();
    this.helper = helper;
    // A helper that died is started again by the next watch; the sandboxes it watched again too.
    for (const address of this.watchers.keys()) helper.stdin.write(`watch ${address}\n`);
    return helper;
  }

  private onLine(line: string): void {
    const [what, src, sport, dst, dport, up, down] = line.split(' ');
    const key = `${src} ${sport} ${dst} ${dport}`;
    if (what === 'open') this.opened.set(key, performance.now());
    if (what === 'lost') this.options.onLoss?.();
    if (what === 'unwatched' && src) {
      this.unwatching.get(src)?.();
      this.unwatching.delete(src);
    }
    if (what !== 'end' || !src || !dst) return;
    const started = this.opened.get(key);
    this.opened.delete(key);
    const countersLost = up === '-' || down === '-';
    this.watchers.get(src)?.({
      address: dst,
      port: Number(dport),
      bytesUp: countersLost ? 0 : Number(up),
      bytesDown: countersLost ? 0 : Number(down),
      durationMs: started === undefined ? 0 : Math.round(performance.now() - started),
      ...(countersLost ? { countersLost: true as const } : {}),
    });
  }

  /** Starts the helper ahead of the first flow (python3 takes ~30 ms to start). */
  warm(): void {
    this.start();
  }

  watch(sandboxAddress: string, onFlow: (flow: KernelFlow) => void): void {
    this.watchers.set(sandboxAddress, onFlow);
    this.start().stdin.write(`watch ${sandboxAddress}\n`);
  }

  /** Reports the sandbox's open flows and deletes them from the connection table. */
  async unwatch(sandboxAddress: string): Promise<void> {
    const helper = this.helper;
    if (helper && this.watchers.has(sandboxAddress)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, UNWATCH_TIMEOUT_MS);
        this.unwatching.set(sandboxAddress, () => {
          clearTimeout(timer);
          resolve();
        });
        helper.stdin.write(`unwatch ${sandboxAddress}\n`);
      });
    }
    this.watchers.delete(sandboxAddress);
  }

  close(): void {
    const helper = this.helper;
    this.helper = undefined;
    helper?.kill();
    this.watchers.clear();
  }
}
