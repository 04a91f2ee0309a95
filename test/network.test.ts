/**
 * Network isolation and egress policy against the real engine (issue 10). Traffic goes only to
 * listeners this file starts: on the host's loopback (reached by `.test` names through the
 * test-only DNS override) or inside the sandboxes themselves. The metadata endpoint and the other
 * denied ranges are proven by runner/network's unit tests and by the rules read back here, never
 * by traffic to them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner, type Sandbox, type SandboxEvent } from '../runner/index.ts';
import { listLinks, listRunnerTables, type NetworkEvent } from '../runner/network/index.ts';
import { eventually, newStateDir, removeStateDir, runCli, sandboxDirs, startCli } from './helpers.ts';
import { type NetnsServer, startNetnsServer } from './netns.ts';

/** Addresses the override answers; 198.51.100.0/24 is documentation space nobody routes. */
const API_ADDRESS = '198.51.100.10';
const OTHER_ADDRESS = '198.51.100.11';
/** Inside the runner's own link range (10.231/16), so a packet to it never leaves the host. */
const REBIND_ADDRESS = '10.231.255.253';

let stateDir: string;
let runner: Runner;
let http: Server;
let httpPort: number;
let hostListener: TcpServer;
let hostListenerPort: number;
let hostAccepted = 0;
const paths: string[] = [];
/** A listener in a namespace of this file's own, reached by forwarding: the fast path's target. */
let far: NetnsServer;

/** Answers `far-hello` and 64 KiB to every connection; prints `conn <bytes received>` at its end. */
const FAR_SERVER = (host: string) => `
const net = require('net');
const server = net.createServer((socket) => {
  let got = 0;
  socket.on('error', () => {});
  socket.on('data', (d) => { if (got === 0) socket.end(Buffer.concat([Buffer.from('far-hello\\n'), Buffer.alloc(65536, 7)])); got += d.length; });
  socket.on('close', () => console.log('conn ' + got));
});
server.listen(0, '${host}', () => console.log(server.address().port));
`;

async function listen(server: Server | TcpServer, host: string): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  stateDir = await newStateDir();
  http = createHttpServer((req, res) => {
    paths.push(req.url ?? '');
    res.end('hello from the test listener\n');
  });
  httpPort = await listen(http, '127.0.0.1');
  // A host service bound to every address, as the attacker would find one.
  hostListener = createTcpServer((socket) => {
    hostAccepted++;
    socket.end('host-service\n');
  });
  hostListenerPort = await listen(hostListener, '0.0.0.0');
  far = await startNetnsServer(FAR_SERVER);
  runner = await Runner.start({
    stateDir,
    dangerouslyOverrideDns: {
      'far.test': { address: far.address },
      'api.test': { address: API_ADDRESS, dialHost: '127.0.0.1' },
      'other.test': { address: OTHER_ADDRESS, dialHost: '127.0.0.1' },
      'rebind.test': { address: REBIND_ADDRESS },
    },
  });
});

afterAll(async () => {
  await runner?.close();
  far?.close();
  http?.close();
  hostListener?.close();
  await removeStateDir(stateDir);
});

interface Ran {
  stdout: string;
  events: SandboxEvent[];
  network: NetworkEvent[];
  exitCode: number;
  sandbox: Sandbox;
}

async function startIn(
  network: unknown,
  command: string[],
  options: { runtime?: string; desktop?: boolean } = {},
): Promise<{ sandbox: Sandbox; stdout: () => string; done: Promise<Ran> }> {
  const sandbox = await runner.create({
    image: options.desktop ? 'grexal/desktop' : 'grexal/agent',
    command,
    network,
    ...options,
  });
  const events: SandboxEvent[] = [];
  let stdout = '';
  sandbox.onEvent((event) => {
    events.push(event);
    if (event.type === 'log' && event.stream === 'stdout') stdout += event.text;
  });
  await sandbox.start();
  const done = sandbox.exited.then((exit) => {
    const ran = {
      stdout,
      events,
      network: events.filter((e): e is NetworkEvent => e.type === 'network'),
      exitCode: exit.exitCode,
      sandbox,
    };
    if (exit.exitCode !== 0)
      console.error(`sandbox ${sandbox.id} exited ${exit.exitCode}:`, JSON.stringify(events));
    return ran;
  });
  return { sandbox, stdout: () => stdout, done };
}

const runIn = async (network: unknown, command: string[], options: { runtime?: string } = {}) =>
  (await startIn(network, command, options)).done;

const python = (script: string) => ['python3', '-c', script];

/** Prints one line per attempt: `<label> ok <first bytes>` or `<label> fail <error class>`. */
const PY_TRY = `
import socket, sys, urllib.request
def tcp(label, host, port):
    try:
        s = socket.create_connection((host, port), timeout=10)
        data = s.recv(64)
        print(label, 'ok' if data else 'fail', data.decode(errors='replace').strip() or 'closed', flush=True)
    except Exception as e:
        print(label, 'fail', type(e).__name__, flush=True)
def url(label, target):
    try:
        body = urllib.request.urlopen(target, timeout=10).read()
        print(label, 'ok', body.decode().strip(), flush=True)
    except Exception as e:
        print(label, 'fail', type(e).__name__, str(getattr(e, 'reason', e))[:80], flush=True)
def own_address():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect(('198.51.100.1', 9))  # UDP connect sends nothing: it only picks the source
    return u.getsockname()[0]
`;

function outcome(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label} `));
  return line?.split(' ')[1] ?? `missing (${stdout})`;
}

describe.each([{ runtime: undefined }, { runtime: 'runsc' }])('isolation under $runtime', ({ runtime }) => {
  it("public: B reaches neither A nor the host's services; A's own loopback works", async () => {
    const serverA = `${PY_TRY}
import threading, os
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', 8000)); srv.listen()
def serve():
    while True:
        c, _ = srv.accept(); c.sendall(b'hello-from-A'); c.close()
threading.Thread(target=serve, daemon=True).start()
print('address', own_address(), flush=True)
tcp('a-loopback', '127.0.0.1', 8000)
while not os.path.exists('/run/grexal/go'): __import__('time').sleep(0.05)
`;
    const a = await startIn('public', python(serverA), { runtime });
    let addressA = '';
    await eventually(async () => {
      addressA = /address (\S+)\n/.exec(a.stdout())?.[1] ?? '';
      return addressA !== '';
    }, 'sandbox A printed its address');
    const gateway = addressA.replace(/\d+$/, (last) => String(Number(last) - 1));
    const b = await runIn(
      'public',
      python(`${PY_TRY}
tcp('b-to-a', '${addressA}', 8000)
tcp('b-to-a-gateway', '${gateway}', ${hostListenerPort})
tcp('b-to-docker-bridge', '172.17.0.1', ${hostListenerPort})
tcp('b-to-own-gateway', own_address().rsplit('.', 1)[0] + '.' + str(int(own_address().rsplit('.', 1)[1]) - 1), ${hostListenerPort})
`),
      { runtime },
    );
    const [dirA] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(a.sandbox.id));
    await writeFile(join(dirA ?? '', 'go'), '');
    const ranA = await a.done;
    expect(outcome(ranA.stdout, 'a-loopback')).toBe('ok');
    expect(ranA.stdout).toContain('a-loopback ok hello-from-A');
    for (const label of ['b-to-a', 'b-to-a-gateway', 'b-to-docker-bridge', 'b-to-own-gateway']) {
      expect(outcome(b.stdout, label), label).toBe('fail');
    }
    expect(b.stdout).not.toContain('hello-from-A');
    expect(b.stdout).not.toContain('host-service');
    expect(hostAccepted).toBe(0);
    const denied = b.network.filter((e) => e.decision === 'denied').map((e) => e.rule);
    expect(denied).toEqual(expect.arrayContaining(['denied-range 10.0.0.0/8', 'denied-range 172.16.0.0/12']));
  });

  it('none: loopback only, no interface but lo, no DNS', async () => {
    const ran = await runIn(
      'none',
      python(`${PY_TRY}
srv = socket.socket(); srv.bind(('127.0.0.1', 8001)); srv.listen()
c = socket.create_connection(('127.0.0.1', 8001)); a, _ = srv.accept(); a.sendall(b'loop'); print('loopback', 'ok', c.recv(4).decode(), flush=True)
print('interfaces', ','.join(name for _, name in socket.if_nameindex()), flush=True)
try:
    socket.getaddrinfo('api.test', 80); print('dns ok', flush=True)
except Exception as e: print('dns fail', type(e).__name__, flush=True)
tcp('raw', '${API_ADDRESS}', ${httpPort})
`),
      { runtime },
    );
    expect(ran.stdout).toContain('loopback ok loop');
    expect(ran.stdout).toContain('interfaces lo\n');
    expect(outcome(ran.stdout, 'dns')).toBe('fail');
    expect(outcome(ran.stdout, 'raw')).toBe('fail');
    expect(ran.network).toEqual([]);
  });
});

const ALLOW_API = { mode: 'allow', allow: ['api.test', 'rebind.test'] };

describe('allow', () => {
  it.each([{ runtime: undefined }, { runtime: 'runsc' }])(
    'under $runtime: reaches a listed name from Python urllib and Node fetch; refuses the rest with the reason',
    async ({ runtime }) => {
      const ran = await runIn(
        ALLOW_API,
        python(`${PY_TRY}
url('urllib', 'http://api.test:${httpPort}/secret-path?token=query-value')
try:
    socket.getaddrinfo('other.test', 80); print('other-dns ok', flush=True)
except socket.gaierror as e: print('other-dns fail', e.errno, flush=True)
tcp('other-raw', '${OTHER_ADDRESS}', ${httpPort})
tcp('rebind', 'rebind.test', ${httpPort})
import subprocess
print(subprocess.run(['node', '-e', """
fetch('http://api.test:${httpPort}/from-node').then(r => r.text()).then(t => console.log('fetch ok', t.trim()), e => console.log('fetch fail', e.cause?.code));
"""], capture_output=True, text=True).stdout, end='', flush=True)
`),
        { runtime },
      );
      expect(ran.stdout).toContain('urllib ok hello from the test listener');
      expect(ran.stdout).toContain('fetch ok hello from the test listener');
      // EAI_AGAIN (-3) is what glibc makes of REFUSED: an answer, not a timeout.
      expect(ran.stdout).toMatch(/other-dns fail -3\n/);
      expect(outcome(ran.stdout, 'other-raw')).toBe('fail');
      expect(outcome(ran.stdout, 'rebind')).toBe('fail');
      expect(ran.stdout).not.toContain('timeout');

      const allowed = ran.network.filter((e) => e.decision === 'allowed');
      expect(allowed).toHaveLength(2);
      for (const event of allowed) {
        expect(event).toMatchObject({
          kind: 'tcp',
          host: 'api.test',
          port: httpPort,
          address: API_ADDRESS,
          rule: 'allow api.test',
        });
        expect(event.bytesUp).toBeGreaterThan(0);
        expect(event.bytesDown).toBeGreaterThan(0);
      }
      expect(ran.network).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: 'dns',
            host: 'other.test',
            decision: 'denied',
            rule: 'not-listed',
          }),
          expect.objectContaining({
            kind: 'tcp',
            address: OTHER_ADDRESS,
            decision: 'denied',
            rule: 'not-listed',
          }),
          expect.objectContaining({
            kind: 'tcp',
            host: 'rebind.test',
            address: REBIND_ADDRESS,
            decision: 'denied',
            rule: 'denied-range 10.0.0.0/8',
          }),
        ]),
      );
      // The listener saw the path; the audit trail never does.
      expect(paths).toContain('/secret-path?token=query-value');
      expect(JSON.stringify(ran.events)).not.toMatch(/secret-path|query-value|from-node/);
    },
  );

  it("reaches a listed name from the desktop's Chromium, and not an unlisted one", async () => {
    const dump = (name: string) =>
      `chromium --headless=new --no-sandbox --disable-gpu --user-data-dir=/tmp/chromium-${name} --dump-dom http://${name}:${httpPort}/from-chromium 2>/dev/null | tr -d '\\n' | head -c 300; echo " <- ${name}"`;
    const ran = await (
      await startIn(ALLOW_API, ['sh', '-c', `${dump('api.test')}; ${dump('other.test')}`], { desktop: true })
    ).done;
    expect(ran.stdout).toMatch(/hello from the test listener[^\n]*<- api\.test/);
    expect(ran.stdout).not.toMatch(/hello from the test listener[^\n]*<- other\.test/);
    expect(ran.network).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'tcp', host: 'api.test', decision: 'allowed' }),
        expect.objectContaining({ kind: 'dns', host: 'other.test', decision: 'denied' }),
      ]),
    );
    expect(JSON.stringify(ran.network)).not.toContain('from-chromium');
  });

  it('a PATCH takes effect for the next connection', async () => {
    const script = `${PY_TRY}
import os, time
url('first', 'http://api.test:${httpPort}/')
while not os.path.exists('/run/grexal/go'): time.sleep(0.05)
url('second', 'http://api.test:${httpPort}/')
`;
    const started = await startIn(ALLOW_API, python(script));
    await eventually(async () => started.stdout().includes('first '), 'the first attempt');
    await started.sandbox.setNetworkPolicy({ mode: 'allow', allow: ['other.test'] });
    const [dir] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(started.sandbox.id));
    await writeFile(join(dir ?? '', 'go'), '');
    const ran = await started.done;
    expect(outcome(ran.stdout, 'first')).toBe('ok');
    expect(outcome(ran.stdout, 'second')).toBe('fail');
    // glibc asks again after a REFUSED: one allowed connection, then only refused queries.
    expect([...new Set(ran.network.map((e) => `${e.kind} ${e.decision}`))]).toEqual([
      'tcp allowed',
      'dns denied',
    ]);
  });
});

/** Connects to the namespace's listener, sends 400 bytes, reads to the end: `<label> ok far-hello <bytes>`. */
const PY_FAR = (port: number) => `${PY_TRY}
import os, time
def far(label, host):
    try:
        s = socket.create_connection((host, ${port}), timeout=10); s.sendall(b'ping' * 100); n = 0; first = b''
        while True:
            d = s.recv(65536)
            if not d: break
            first = first or d[:9]
            n += len(d)
        print(label, 'ok' if n else 'fail', first.decode(errors='replace'), n, flush=True)
    except Exception as e: print(label, 'fail', type(e).__name__, flush=True)
def wait_go():
    while not os.path.exists('/run/grexal/go'): time.sleep(0.05)
`;

const FAST_MARK_DECIMAL = '1735917569'; // 0x67780001, as /proc/net/nf_conntrack prints it

async function linkOf(sandbox: Sandbox): Promise<{ hostIf: string; sandboxAddress: string }> {
  const [link] = (await listLinks()).filter((l) => l.sandboxId === sandbox.id && l.kind === 'veth');
  const hostIf = link?.hostIf ?? '';
  const inet = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', hostIf], { encoding: 'utf8' });
  return { hostIf, sandboxAddress: /inet \S+ peer (\S+)\//.exec(inet)?.[1] ?? '' };
}

function nftJson(args: string[]): { nftables: Record<string, { packets?: number; elem?: unknown[] }>[] } {
  return JSON.parse(execFileSync('nft', ['-j', 'list', ...args], { encoding: 'utf8' }));
}

/** Packets the sandbox's fast-path rules accepted: the kernel's own count, not the runner's. */
async function fastPackets(hostIf: string): Promise<number> {
  const listing = nftJson(['counter', 'inet', await ownTable(), `fast_${hostIf}`]);
  return listing.nftables.find((e) => e['counter'])?.['counter']?.packets ?? -1;
}

async function setElements(hostIf: string, set: string): Promise<string> {
  const listing = nftJson(['set', 'inet', await ownTable(), `${set}_${hostIf}`]);
  return JSON.stringify(listing.nftables.find((e) => e['set'])?.['set']?.elem ?? []);
}

function conntrackOf(address: string): string[] {
  return readFileSync('/proc/net/nf_conntrack', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`src=${address} `) && line.includes(`mark=${FAST_MARK_DECIMAL} `));
}

async function goFile(sandbox: Sandbox): Promise<void> {
  const [dir] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(sandbox.id));
  await writeFile(join(dir ?? '', 'go'), '');
}

describe('fast path', () => {
  it('the kernel carries an allowed flow, the proxy never sees it, and its audit event has the bytes; a PATCH narrowing cuts the next one', async () => {
    const seen = far.lines.length;
    const started = await startIn(
      { mode: 'allow', allow: ['far.test', 'api.test'] },
      python(`${PY_FAR(far.port)}
far('first', 'far.test')
url('proxied', 'http://api.test:${httpPort}/')
wait_go()
far('second', '${far.address}')  # the address it resolved before: a client that caches DNS
`),
    );
    await eventually(async () => started.stdout().includes('proxied '), 'the first attempts');
    const { hostIf, sandboxAddress } = await linkOf(started.sandbox);
    expect(await fastPackets(hostIf)).toBeGreaterThan(0);
    expect(await setElements(hostIf, 'any')).toContain(far.address);
    // The override's redirected address is never in a set: only the proxy can dial it elsewhere.
    expect(await setElements(hostIf, 'any')).not.toContain(API_ADDRESS);

    await started.sandbox.setNetworkPolicy({ mode: 'allow', allow: ['api.test'] });
    expect(await setElements(hostIf, 'any')).toBe('[]');
    const packetsBefore = await fastPackets(hostIf);
    await goFile(started.sandbox);
    const ran = await started.done;
    expect(ran.stdout).toMatch(/^first ok far-hello /m);
    expect(outcome(ran.stdout, 'proxied')).toBe('ok');
    expect(outcome(ran.stdout, 'second')).toBe('fail');
    expect(packetsBefore).toBeGreaterThan(0);

    await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
    const tcp = ran.network.filter((e) => e.kind === 'tcp');
    const kernel = tcp.filter((e) => e.via === 'kernel');
    expect(kernel).toHaveLength(1);
    expect(kernel[0]).toMatchObject({
      host: 'far.test',
      address: far.address,
      port: far.port,
      decision: 'allowed',
      rule: 'allow far.test',
    });
    // IP bytes, headers included: at least what was sent each way.
    expect(kernel[0]?.bytesUp).toBeGreaterThanOrEqual(400);
    expect(kernel[0]?.bytesDown).toBeGreaterThanOrEqual(65_536 + 10);
    expect(tcp.filter((e) => e.via === 'proxy')).toEqual([
      expect.objectContaining({ host: 'api.test', address: API_ADDRESS, decision: 'allowed' }),
    ]);
    // After the narrowing, the address the sandbox still knew went to the proxy, which refused it.
    expect(tcp).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ address: far.address, decision: 'denied', rule: 'not-listed' }),
      ]),
    );
    // The listener saw exactly the one forwarded connection, with all 400 bytes.
    await eventually(async () => far.lines.length > seen, 'the listener closed the connection');
    expect(far.lines.slice(seen)).toEqual(['conn 400']);
    // Nothing of the sandbox is left in the kernel's connection table.
    expect(conntrackOf(sandboxAddress)).toEqual([]);
  });

  it('a CIDR rule is in the kernel from the start: no name, no proxy', async () => {
    const ran = await runIn(
      { mode: 'allow', allow: [`${far.address}/32:${far.port}`] },
      python(`${PY_FAR(far.port)}
far('cidr', '${far.address}')
tcp('other-port', '${far.address}', ${far.port + 1})
`),
    );
    expect(ran.stdout).toMatch(/^cidr ok far-hello /m);
    expect(outcome(ran.stdout, 'other-port')).toBe('fail');
    await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
    expect(
      ran.network.filter((e) => e.kind === 'tcp').map((e) => `${e.port} ${e.decision} ${e.rule} ${e.via}`),
    ).toEqual(
      expect.arrayContaining([
        `${far.port} allowed allow ${far.address}/32:${far.port} kernel`,
        `${far.port + 1} denied not-listed undefined`,
      ]),
    );
  });

  it.each([{ runtime: undefined }, { runtime: 'runsc' }])(
    'under $runtime: public forwards any public address in the kernel; test-redirected addresses still go to the proxy',
    async ({ runtime }) => {
      const ran = await runIn(
        'public',
        python(`${PY_FAR(far.port)}
far('raw', '${far.address}')
url('proxied', 'http://api.test:${httpPort}/')
`),
        { runtime },
      );
      expect(ran.stdout).toMatch(/^raw ok far-hello /m);
      expect(outcome(ran.stdout, 'proxied')).toBe('ok');
      await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
      expect(
        ran.network.filter((e) => e.kind === 'tcp').map((e) => `${e.address} ${e.rule} ${e.via}`),
      ).toEqual(expect.arrayContaining([`${far.address} public kernel`, `${API_ADDRESS} public proxy`]));
    },
  );
});

/** The one table of this file's runner, found by the instance its name carries. */
async function ownTable(): Promise<string> {
  const tables = (await listRunnerTables(hostname())).filter(
    (t) => t.instanceId === runner.runtime.instanceId,
  );
  expect(tables).toHaveLength(1);
  return tables[0]?.name ?? '';
}

function ruleset(): string {
  return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

function links(): string {
  return execFileSync('ip', ['-d', 'link', 'show'], { encoding: 'utf8' });
}

describe('cleanup', () => {
  it('labels what it creates and removes it when the sandbox ends', async () => {
    const started = await startIn('public', [
      'sh',
      '-c',
      'while [ ! -e /run/grexal/go ]; do sleep 0.05; done',
    ]);
    const id = started.sandbox.id;
    expect(ruleset()).toContain(`comment "sandbox=${id}"`);
    expect(ruleset()).toContain(`table inet ${await ownTable()}`);
    expect(links()).toContain(`alias grexal sandbox=${id} runner=${runner.runtime.instanceId}`);
    const mine = (await listLinks()).filter((l) => l.sandboxId === id);
    // The slot's lock (a veth pair of its own, holding the host's address) and the host end, both labelled.
    expect(mine.map((l) => l.kind).sort()).toEqual(['lock', 'veth']);
    const hostIf = mine.find((l) => l.kind === 'veth')?.hostIf ?? '';
    // The fast path needs the kernel to forward from the host end; IPv6 stays off.
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, 'utf8').trim()).toBe('1');
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, 'utf8').trim()).toBe('1');
    const objects = [
      `sb_${hostIf}`,
      `fast_${hostIf}`,
      `any_${hostIf}`,
      `cidrport_${hostIf}`,
      `"${hostIf}" : jump`,
    ];
    for (const name of objects) expect(ruleset()).toContain(name);
    await goFile(started.sandbox);
    await started.done;
    expect(ruleset()).not.toContain(id);
    for (const name of objects) expect(ruleset()).not.toContain(name);
    expect(links()).not.toContain(id);
  });

  it('the rules read back: only marked flows are forwarded, never to a denied range; IPv6 is dropped; only the proxy and DNS are open', async () => {
    const table = execFileSync('nft', ['list', 'table', 'inet', await ownTable()], {
      encoding: 'utf8',
    });
    expect(table).toMatch(
      /hook forward[^}]*ct mark 0x67780001 ct state established,related accept\s+iifname @sandboxes ip daddr @denied4 reject with icmpx admin-prohibited\s+iifname @sandboxes oifname != @sandboxes ct mark 0x67780001 accept\s+iifname @sandboxes meta l4proto tcp reject with tcp reset\s+iifname @sandboxes reject/,
    );
    // The metadata endpoint's range is among those no set can open.
    expect(/set denied4 \{[^}]*\}/.exec(table)?.[0]).toContain('169.254.0.0/16');
    expect(table).toMatch(
      /hook prerouting[^}]*meta l4proto tcp ip daddr != @denied4 ip daddr != 10.231.0.0\/16 ip daddr != @proxied4 fib daddr type != local iifname vmap @fastpaths/,
    );
    // The override's redirected addresses are proxied, never forwarded.
    expect(/set proxied4 \{[^}]*\}/.exec(table)?.[0]).toContain(API_ADDRESS);
    expect(table).toMatch(
      /hook prerouting[^}]*iifname @sandboxes meta nfproto ipv4 meta l4proto tcp redirect to :15001/,
    );
    expect(table).toMatch(
      /hook input[^}]*tcp dport 15001 ct status dnat accept\s+iifname @sandboxes meta nfproto ipv4 udp dport 53 accept\s+iifname @sandboxes meta l4proto tcp reject with tcp reset\s+iifname @sandboxes reject/,
    );
    // No accept rule but the proxy's, the resolver's and the two for marked flows.
    expect(table.match(/accept$/gm)?.length).toBe(4);
    // The one rule outside the table: forwarded marked flows past Docker's FORWARD policy.
    expect(execFileSync('iptables', ['-S', 'DOCKER-USER'], { encoding: 'utf8' })).toContain(
      `-m connmark --mark 0x67780001 -m comment --comment "grexal ${await ownTable()}" -j ACCEPT`,
    );
  });

  it("reaps a SIGKILLed runner's table and links on the next start", async () => {
    const cli = startCli(['run', '--', 'sleep', '60'], { GREXAL_STATE_DIR: stateDir });
    const prefix = `${hostname()}/${cli.child.pid}-`;
    await eventually(
      async () => (await listLinks()).some((l) => l.instanceId?.startsWith(prefix)),
      'the CLI wired its sandbox',
      400,
    );
    cli.child.kill('SIGKILL');
    await cli.exited;
    expect((await listRunnerTables(hostname())).some((t) => t.instanceId?.startsWith(prefix))).toBe(true);
    const next = await Runner.start({ stateDir });
    try {
      await next.reaped;
      expect((await listRunnerTables(hostname())).filter((t) => t.instanceId?.startsWith(prefix))).toEqual(
        [],
      );
      expect((await listLinks()).filter((l) => l.instanceId?.startsWith(prefix))).toEqual([]);
      expect(ruleset()).not.toContain(`grexal_${cli.child.pid}_`);
      expect(execFileSync('iptables', ['-S', 'DOCKER-USER'], { encoding: 'utf8' })).not.toContain(
        `grexal_${cli.child.pid}_`,
      );
    } finally {
      await next.close();
    }
  });
});

describe('the test-only DNS override', () => {
  it('is refused by grexal serve unless explicitly enabled', async () => {
    const { code, stderr } = await runCli(['serve', '--port', '0'], {
      GREXAL_STATE_DIR: stateDir,
      GREXAL_DANGEROUSLY_OVERRIDE_DNS: JSON.stringify({ 'api.test': { address: API_ADDRESS } }),
    });
    expect(code).toBe(1);
    expect(stderr).toContain('--dangerously-enable-dns-override');
  });
});

describe('grexal run flags', () => {
  it('--network none gives loopback only; a bad --allow is refused before anything exists', async () => {
    const env = { GREXAL_STATE_DIR: stateDir };
    const none = await runCli(
      [
        'run',
        '--network',
        'none',
        '--',
        'python3',
        '-c',
        "import socket; print(','.join(n for _, n in socket.if_nameindex()))",
      ],
      env,
    );
    expect(none.stdout).toBe('lo\n');
    expect(none.code).toBe(0);
    const bad = await runCli(['run', '--allow', 'api.test', '--allow', '10.0.0.0/8', '--', 'true'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('E_NETWORK_DESTINATION_DENIED');
    expect(bad.stderr).toContain('always denied');
  });
});
