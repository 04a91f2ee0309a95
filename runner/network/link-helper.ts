/**
 * Moves a sandbox's link into its namespace and configures it there without spawning anything:
 * a long-lived python3 helper (stdlib only; Node has no netlink sockets and no setns) sends the
 * rtnetlink requests itself, the move from the host's namespace and the address, link and route
 * from a thread that joined the sandbox's (setns of a network namespace is per thread). The two
 * processes per start it replaces (`ip link set … netns`, `nsenter … ip -batch`) cost 7-20 ms
 * on the start's critical path on a loaded two-core host, and every spawn from the runner's big
 * process blocks its event loop for the fork. Without python3 the caller spawns them as before.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const HELPER = String.raw`
import ctypes, os, socket, struct, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
seq = 0
def nla(t, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, t) + payload + b'\0' * ((4 - n % 4) % 4)
def request(sock, kind, flags, body):
    global seq
    seq += 1
    sock.send(struct.pack('=IHHII', 16 + len(body), kind, flags | 1 | 4, seq, 0) + body)  # REQUEST, ACK
    while True:
        data, at = sock.recv(65536), 0
        while at + 16 <= len(data):
            length, t = struct.unpack_from('=IH', data, at)
            if t == 2:  # NLMSG_ERROR: 0 is the ACK
                err = struct.unpack_from('=i', data, at + 16)[0]
                if err: raise OSError(-err, os.strerror(-err))
                return
            at += (length + 3) & ~3
def ifinfo(index, flags=0, change=0):
    return struct.pack('=BxHiII', 0, 0, index, flags, change)
def configure(pid, address, prefix, gateway, result):
    try:
        fd = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET, this thread only
                e = ctypes.get_errno(); raise OSError(e, 'setns: ' + os.strerror(e))
        finally: os.close(fd)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE, in the sandbox
        try:
            index = socket.if_nametoindex('eth0')
            a = socket.inet_aton(address)
            request(s, 20, 0x600, struct.pack('=BBBBI', socket.AF_INET, prefix, 0, 0, index) + nla(2, a) + nla(1, a))  # RTM_NEWADDR
            request(s, 16, 0, ifinfo(index, 1, 1))  # RTM_NEWLINK: up
            request(s, 24, 0x600, struct.pack('=BBBBBBBBI', socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0) + nla(5, socket.inet_aton(gateway)) + nla(4, struct.pack('=i', index)))  # RTM_NEWROUTE: default
        finally: s.close()
    except Exception as e: result.append(e)
host = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
for line in sys.stdin:
    ident = line.split(' ', 1)[0]
    try:
        _, far, pid, address, prefix, gateway = line.split()
        # Moved and renamed in one request: the host may have an eth0 of its own.
        request(host, 16, 0, ifinfo(socket.if_nametoindex(far)) + nla(19, struct.pack('=I', int(pid))) + nla(3, b'eth0\0'))
        result = []
        t = threading.Thread(target=configure, args=(int(pid), address, int(prefix), gateway, result))
        t.start(); t.join()
        if result: raise result[0]
        print(ident, 'ok', flush=True)
    except Exception as e:
        print(ident, 'error', str(e).replace('\n', ' '), flush=True)
`;

export interface MoveRequest {
  farIf: string;
  pid: number;
  address: string;
  prefix: number;
  gateway: string;
}

export class LinkHelper {
  private helper?: ChildProcessWithoutNullStreams;
  private broken = false;
  private next = 0;
  private readonly waiting = new Map<number, (result: string | undefined) => void>();

  private start(): ChildProcessWithoutNullStreams | undefined {
    if (this.broken) return undefined;
    if (this.helper) return this.helper;
    const helper = spawn('python3', ['-I', '-S', '-c', HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
    const gone = () => {
      this.broken = true;
      this.helper = undefined;
      for (const resolve of this.waiting.values()) resolve(undefined);
      this.waiting.clear();
    };
    helper.on('error', gone);
    helper.on('exit', gone);
    helper.stdin.on('error', () => {});
    helper.stderr.resume();
    createInterface({ input: helper.stdout }).on('line', (line) => {
      const [id, ...rest] = line.split(' ');
      const resolve = this.waiting.get(Number(id));
      this.waiting.delete(Number(id));
      resolve?.(rest.join(' '));
    });
    helper.unref();
    (helper.stdout as unknown as { unref?: () => void }).unref?.();
    this.helper = helper;
    return helper;
  }

  /** Starts the helper ahead of the first start (python3 takes ~30 ms to start). */
  warm(): void {
    this.start();
  }

  /**
   * Moves and configures the link. `false` when there is no helper (the caller spawns `ip`
   * instead); throws what the kernel answered otherwise.
   */
  async move(request: MoveRequest): Promise<boolean> {
    const helper = this.start();
    if (!helper) return false;
    const id = this.next++;
    const answer = await new Promise<string | undefined>((resolve) => {
      this.waiting.set(id, resolve);
      const { farIf, pid, address, prefix, gateway } = request;
      helper.stdin.write(`${id} ${farIf} ${pid} ${address} ${prefix} ${gateway}\n`);
    });
    if (answer === undefined) return false;
    if (answer !== 'ok')
      throw new Error(`moving ${request.farIf} into ${request.pid}: ${answer.replace(/^error /, '')}`);
    return true;
  }

  close(): void {
    this.helper?.kill();
    this.helper = undefined;
  }
}
