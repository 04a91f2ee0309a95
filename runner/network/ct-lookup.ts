/**
 * The original destination of a redirected connection, asked of the kernel's connection table
 * over ctnetlink by the reply tuple (an O(1) lookup; /proc/net/nf_conntrack walks every bucket,
 * ~6 ms on a host with 262 144). Node has neither SO_ORIGINAL_DST nor netlink sockets, so a
 * long-lived python3 helper (stdlib only) does the netlink part, one line per question.
 * Without python3 the /proc table is read instead (correct, slower).
 */

import { LineHelper } from '../host/line-helper.ts';
import { type OriginalDestination, originalDestination } from './conntrack.ts';
import { CTNETLINK_PY } from './ctnetlink-py.ts';

const HELPER = `${CTNETLINK_PY}
import sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
seq = 0
for line in sys.stdin:
    try:
        ident, hsrc, hport, sdst, sport = line.split()
        seq += 1
        body = struct.pack('=BBH', socket.AF_INET, 0, 0) + tuple_attr(2, hsrc, sdst, int(hport), int(sport))
        s.send(struct.pack('=IHHII', 16 + len(body), (1 << 8) | 1, 1, seq, 0) + body)
        data = s.recv(65536)
        length, kind = struct.unpack_from('=IH', data, 0)
        if kind == 2: raise LookupError()
        orig = attrs(attrs(data[20:length])[1])
        ip, proto = attrs(orig[1]), attrs(orig[2])
        print(ident, socket.inet_ntoa(ip[2]), struct.unpack('!H', proto[3])[0], flush=True)
    except Exception:
        print(line.split(' ', 1)[0], '-', flush=True)
`;

export interface ConnectionTuple {
  /** The host end's address and the proxy port the connection was redirected to. */
  proxyAddress: string;
  proxyPort: number;
  sandboxAddress: string;
  sandboxPort: number;
}

export class OriginalDestinations {
  private readonly helper = new LineHelper(HELPER);

  /** Starts the helper ahead of the first connection. */
  warm(): void {
    this.helper.warm();
  }

  async lookup(tuple: ConnectionTuple): Promise<OriginalDestination | undefined> {
    const { proxyAddress, proxyPort, sandboxAddress, sandboxPort } = tuple;
    const answer = await this.helper.request([proxyAddress, proxyPort, sandboxAddress, sandboxPort]);
    const [address, port] = answer?.split(' ') ?? [];
    if (address && address !== '-') return { address, port: Number(port) };
    // The helper failed or found nothing: the slow table has the final word.
    return originalDestination(sandboxAddress, sandboxPort);
  }

  close(): void {
    this.helper.close();
  }
}
