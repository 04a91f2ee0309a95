/**
 * The runner's root work that Node cannot do without spawning a tool, in one long-lived python3
 * process (stdlib and ctypes only): nft scripts through libnftables; a slot's lock and a sandbox's
 * veth pair made, and links deleted, over rtnetlink; the per-sandbox tmpfs mounted and unmounted
 * by mount(2) and umount2(2); a redirected connection's original destination looked up over
 * ctnetlink (runner/network/ct-lookup.ts).
 *
 * Why not spawn `nft`, `ip`, `mount` and `umount`: every spawn forks the runner, whose 80 MB
 * process takes its event loop for the fork. A CPU profile of 20 concurrent claims from a pool
 * (bench/pool) found spawn() at 438 ms of the 1.5 s burst, nearly all of it the teardowns of the
 * burst's earlier runs (`ip link del` twice and `umount` each), while the later claims' requests
 * waited for the loop. Why one process: each python3 start costs ~30 ms of CPU, on the path of a
 * cold `grexal run`.
 *
 * Each kind of work has a thread of its own, so that a slow one (deleting a veth waits for the
 * kernel's network to quiesce, tens of ms on a loaded host) never queues a claim's nft script
 * behind it. Answers: `ok`, `gone` (no such link), `exists` (a lock's name is taken),
 * `unavailable` (no libnftables: the caller spawns `nft`), `err <base64>` (nft's messages),
 * `<address> <port>` or `-` (a lookup, found or not) or `error <message>`. Paths and aliases go
 * in base64: a state directory may hold spaces.
 */
import { CTNETLINK_PY } from './ctnetlink-py.ts';
import { LineHelper } from './line-helper.ts';

// After the ctnetlink codec: nla, attrs and tuple_attr.
const PROGRAM = `${CTNETLINK_PY}${String.raw`
import base64, ctypes, os, queue, socket, struct, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
out = threading.Lock()
def answer(ident, text):
    with out:
        sys.stdout.write(ident + ' ' + text.replace('\n', ' ') + '\n')
        sys.stdout.flush()
def errno_error(what):
    e = ctypes.get_errno()
    return OSError(e, what + ': ' + os.strerror(e))

# --- rtnetlink: the sandbox's veth pair, and deleting a link ---
seq = 0
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
def point_to_point(sock, index, address, peer):
    request(sock, 20, 0x600, struct.pack('=BBBBI', socket.AF_INET, 32, 0, 0, index) + nla(2, socket.inet_aton(address)) + nla(1, socket.inet_aton(peer)))  # RTM_NEWADDR: local, peer
def inside(pid, address, peer, result):
    try:
        fd = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0: raise errno_error('setns')  # CLONE_NEWNET, this thread only
        finally: os.close(fd)
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE, in the sandbox
        try:
            index = socket.if_nametoindex('eth0')
            point_to_point(s, index, address, peer)
            request(s, 16, 0, ifinfo(index, 1, 1))  # RTM_NEWLINK: up
            request(s, 24, 0x600, struct.pack('=BBBBBBBBI', socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0) + nla(5, socket.inet_aton(peer)) + nla(4, struct.pack('=i', index)))  # RTM_NEWROUTE: default via the host
        finally: s.close()
    except Exception as e: result.append(e)
def write(path, value):
    with open(path, 'w') as f: f.write(value)
host = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
def new_veth(name, peer_info):
    linkinfo = nla(1, b'veth') + nla(2, nla(1, peer_info))  # IFLA_INFO_KIND, IFLA_INFO_DATA{VETH_INFO_PEER}
    request(host, 16, 0x600, ifinfo(0) + nla(3, name.encode() + b'\0') + nla(18, linkinfo))  # RTM_NEWLINK, CREATE|EXCL
    return socket.if_nametoindex(name)
def host_end(index, alias, address, peer):
    request(host, 16, 0, ifinfo(index) + nla(20, base64.b64decode(alias)))  # IFLA_IFALIAS
    point_to_point(host, index, address, peer)
    request(host, 16, 0, ifinfo(index, 1, 1))  # up
def pair(args):
    name, pid, address, peer, forwarding, alias = args.split(' ')
    pid = int(pid)
    # veth with its peer made inside the sandbox's namespace as eth0: no namespace move.
    index = new_veth(name, ifinfo(0) + nla(3, b'eth0\0') + nla(19, struct.pack('=I', pid)))  # IFLA_IFNAME, IFLA_NET_NS_PID
    # Before the end is up: no IPv6 on it, and forwarding only for the fast path.
    try: write('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name, '1')
    except OSError: pass
    write('/proc/sys/net/ipv4/conf/%s/forwarding' % name, forwarding)
    host_end(index, alias, address, peer)
    result = []
    t = threading.Thread(target=inside, args=(pid, peer, address, result))
    t.start(); t.join()
    if result: raise result[0]
    return 'ok'
def lock(args):
    name, far, address, alias = args.split(' ')
    # A veth pair whose far end stays down: a slot's lock, holding the host's address (veth.ts).
    try: index = new_veth(name, ifinfo(0) + nla(3, far.encode() + b'\0'))
    except OSError as e:
        if e.errno == 17: return 'exists'  # EEXIST: the slot is taken
        raise
    try:
        # No IPv6 address of its own (ip's addrgenmode none), before it is up.
        try: write('/proc/sys/net/ipv6/conf/%s/addr_gen_mode' % name, '1')
        except OSError: pass
        host_end(index, alias, address, address)
    except Exception:
        delete(name)
        raise
    return 'ok'
def delete(name):
    try: request(host, 17, 0, ifinfo(0) + nla(3, name.encode() + b'\0'))  # RTM_DELLINK by IFLA_IFNAME
    except OSError as e:
        if e.errno == 19: return 'gone'  # ENODEV
        raise
    return 'ok'

# --- mount(2): the per-sandbox tmpfs ---
def mount(args):
    path, data = args.split(' ')
    # MS_NOSUID | MS_NODEV | MS_NOEXEC, as mount -o nosuid,nodev,noexec
    if libc.mount(b'grexal-run', base64.b64decode(path), b'tmpfs', 2 | 4 | 8, data.encode()) != 0: raise errno_error('mount')
    return 'ok'
def umount(path):
    if libc.umount2(base64.b64decode(path), 2) != 0: raise errno_error('umount')  # MNT_DETACH, as umount -l
    return 'ok'

# --- ctnetlink: the original destination of a connection the proxy took, by its reply tuple ---
ct = None
def original(args):
    global ct
    if ct is None:
        ct = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        ct.bind((0, 0))
    proxy_address, proxy_port, sandbox_address, sandbox_port = args.split(' ')
    body = struct.pack('=BBH', socket.AF_INET, 0, 0) + tuple_attr(2, proxy_address, sandbox_address, int(proxy_port), int(sandbox_port))  # CTA_TUPLE_REPLY
    ct.send(struct.pack('=IHHII', 16 + len(body), (1 << 8) | 1, 1, 0, 0) + body)  # IPCTNL_MSG_CT_GET, REQUEST
    data = ct.recv(65536)
    length, kind = struct.unpack_from('=IH', data, 0)
    if kind == 2: return '-'  # NLMSG_ERROR: no such connection
    orig = attrs(attrs(data[20:length])[1])  # CTA_TUPLE_ORIG
    ip, proto = attrs(orig[1]), attrs(orig[2])
    return socket.inet_ntoa(ip[2]) + ' ' + str(struct.unpack('!H', proto[3])[0])

# --- libnftables: nft scripts, one transaction each; loaded at the first ---
nft = None
def nft_script(script):
    global nft
    if nft is None:
        try: lib = ctypes.CDLL('libnftables.so.1')
        except OSError: nft = False
        else:
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            for name in ('nft_ctx_buffer_output', 'nft_ctx_buffer_error'):
                getattr(lib, name).argtypes = [ctypes.c_void_p]
            for name in ('nft_ctx_get_output_buffer', 'nft_ctx_get_error_buffer'):
                getattr(lib, name).argtypes = [ctypes.c_void_p]
                getattr(lib, name).restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            ctx = lib.nft_ctx_new(0)
            nft = (lib, ctx) if ctx and not lib.nft_ctx_buffer_output(ctx) and not lib.nft_ctx_buffer_error(ctx) else False
    if not nft: return 'unavailable'
    lib, ctx = nft
    failed = lib.nft_run_cmd_from_buffer(ctx, base64.b64decode(script))
    # nft's output goes to a buffer, never to this protocol's stdout.
    lib.nft_ctx_get_output_buffer(ctx)
    errors = lib.nft_ctx_get_error_buffer(ctx) or b''
    return 'err ' + base64.b64encode(errors).decode() if failed else 'ok'

VERBS = {'nft': (nft_script, 'nft'), 'pair': (pair, 'link'), 'lock': (lock, 'link'), 'del': (delete, 'link'), 'mount': (mount, 'mount'), 'umount': (umount, 'mount'), 'ct': (original, 'ct')}
queues = {}
def work(jobs):
    while True:
        ident, verb, args = jobs.get()
        try: answer(ident, VERBS[verb][0](args))
        except Exception as e: answer(ident, 'error ' + str(e))
for kind in ('nft', 'link', 'mount', 'ct'):
    queues[kind] = queue.Queue()
    threading.Thread(target=work, args=(queues[kind],), daemon=True).start()
for line in sys.stdin:
    ident, _, rest = line.rstrip('\n').partition(' ')
    verb, _, args = rest.partition(' ')
    if verb in VERBS: queues[VERBS[verb][1]].put((ident, verb, args))
    else: answer(ident, 'error unknown request ' + verb)
`}`;

/** The runner's one root helper, started at its first request (or `warm()`). */
export const rootHelper = new LineHelper(PROGRAM);

export const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** What went wrong, from an answer that is not one of the expected ones. */
export const failure = (answer: string): string => answer.replace(/^error /, '');
