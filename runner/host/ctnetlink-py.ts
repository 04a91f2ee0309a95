/**
 * The ctnetlink codec both python3 helpers start with (the root helper's conntrack lookups,
 * root-helper.ts; flow events, runner/network/kernel-flows.ts): netlink attributes packed and
 * read, and a TCP tuple as conntrack names it. Standard library only; each helper's own program
 * follows it.
 */
export const CTNETLINK_PY = String.raw`
import socket, struct
NESTED = 0x8000
def nla(t, payload):
    n = 4 + len(payload)
    return struct.pack('=HH', n, t) + payload + b'\0' * ((4 - n % 4) % 4)
def attrs(data):
    out, at = {}, 0
    while at + 4 <= len(data):
        n, t = struct.unpack_from('=HH', data, at)
        if n < 4: break
        out[t & 0x3fff] = data[at + 4:at + n]
        at += (n + 3) & ~3
    return out
def tuple_attr(t, src, dst, sport, dport):
    ip = nla(1 | NESTED, nla(1, socket.inet_aton(src)) + nla(2, socket.inet_aton(dst)))
    proto = nla(2 | NESTED, nla(1, b'\x06') + nla(2, struct.pack('!H', sport)) + nla(3, struct.pack('!H', dport)))
    return nla(t | NESTED, ip + proto)
`;
