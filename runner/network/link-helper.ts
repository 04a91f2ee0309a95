/**
 * Makes a sandbox's veth pair with its far end created inside the sandbox's namespace, and
 * configures both ends, without spawning anything: a long-lived python3 helper (stdlib only;
 * Node has no netlink sockets and no setns) sends the rtnetlink requests itself, the host end's
 * from the host's namespace and `eth0`'s from a thread that joined the sandbox's (setns of a
 * network namespace is per thread). The processes it replaces (`ip` for the pair and the host
 * end, `nsenter … ip` for the inside) cost 7-20 ms on the start's critical path on a loaded
 * two-core host, and every spawn from the runner's big process blocks its event loop for the
 * fork. Without python3 the caller spawns them.
 */
import { LineHelper } from './line-helper.ts';

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
def inside(pid, address, peer, result):
    try:
        fd = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET, this thread only
                e = ctypes.get_errno(); raise OSError(e, 'setns: ' + os.strerror(e))
        finally: os.close(fd)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE, in the sandbox
        try:
            index = socket.if_nametoindex('eth0')
            point_to_point(s, index, address, peer)
            request(s, 16, 0, ifinfo(index, 1, 1))  # RTM_NEWLINK: up
            request(s, 24, 0x600, struct.pack('=BBBBBBBBI', socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0) + nla(5, socket.inet_aton(peer)) + nla(4, struct.pack('=i', index)))  # RTM_NEWROUTE: default via the host
        finally: s.close()
    except Exception as e: result.append(e)
def point_to_point(sock, index, address, peer):
    request(sock, 20, 0x600, struct.pack('=BBBBI', socket.AF_INET, 32, 0, 0, index) + nla(2, socket.inet_aton(address)) + nla(1, socket.inet_aton(peer)))  # RTM_NEWADDR: local, peer
def write(path, value):
    with open(path, 'w') as f: f.write(value)
host = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
for line in sys.stdin:
    ident = line.split(' ', 1)[0]
    try:
        _, name, pid, address, peer, forwarding, alias = line.rstrip('\n').split(' ', 6)
        pid = int(pid)
        # veth with its peer made inside the sandbox's namespace as eth0: no namespace move.
        peer_info = ifinfo(0) + nla(3, b'eth0\0') + nla(19, struct.pack('=I', pid))  # IFLA_IFNAME, IFLA_NET_NS_PID
        linkinfo = nla(1, b'veth') + nla(2, nla(1, peer_info))  # IFLA_INFO_KIND, IFLA_INFO_DATA{VETH_INFO_PEER}
        request(host, 16, 0x600, ifinfo(0) + nla(3, name.encode() + b'\0') + nla(18, linkinfo))  # RTM_NEWLINK, CREATE|EXCL
        index = socket.if_nametoindex(name)
        # Before the end is up: no IPv6 on it, and forwarding only for the fast path.
        try: write('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name, '1')
        except OSError: pass
        write('/proc/sys/net/ipv4/conf/%s/forwarding' % name, forwarding)
        request(host, 16, 0, ifinfo(index) + nla(20, alias.encode()))  # IFLA_IFALIAS
        point_to_point(host, index, address, peer)
        request(host, 16, 0, ifinfo(index, 1, 1))  # up
        result = []
        t = threading.Thread(target=inside, args=(pid, peer, address, result))
        t.start(); t.join()
        if result: raise result[0]
        print(ident, 'ok', flush=True)
    except Exception as e:
        print(ident, 'error', str(e).replace('\n', ' '), flush=True)
`;

export interface PairRequest {
  hostIf: string;
  pid: number;
  hostAddress: string;
  sandboxAddress: string;
  alias: string;
  forwarding: boolean;
}

export class LinkHelper {
  private readonly helper = new LineHelper(HELPER);

  /** Starts the helper ahead of the first start. */
  warm(): void {
    this.helper.warm();
  }

  /**
   * Makes and configures the pair. `false` when there is no helper (the caller spawns `ip`
   * instead); throws what the kernel answered otherwise.
   */
  async makePair(request: PairRequest): Promise<boolean> {
    const { hostIf, pid, hostAddress, sandboxAddress, forwarding, alias } = request;
    const answer = await this.helper.request([
      hostIf,
      pid,
      hostAddress,
      sandboxAddress,
      forwarding ? 1 : 0,
      alias.replace(/\n/g, ' '),
    ]);
    if (answer === undefined) return false;
    if (answer !== 'ok') throw new Error(`making ${hostIf} for ${pid}: ${answer.replace(/^error /, '')}`);
    return true;
  }

  close(): void {
    this.helper.close();
  }
}
