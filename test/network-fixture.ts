/**
 * The shared setup of the network tests (test/network-*.test.ts, issue 10): a runner with the
 * test-only DNS override, and the listeners its sandboxes are sent to: on the host's loopback
 * (reached by `.test` names) or in a namespace of this fixture's own. Traffic goes only to them or
 * inside the sandboxes themselves. The metadata endpoint and the other denied ranges are proven by
 * runner/network's unit tests and by the rules read back, never by traffic to them.
 *
 * The state below is exported as live bindings, set by the hooks `useNetworkFixture()` registers
 * in the calling file: every file gets its own runner and listeners.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { Runner, type Sandbox, type SandboxEvent } from '../runner/index.ts';
import { listLinks, listRunnerTables, type NetworkEvent } from '../runner/network/index.ts';
import { newStateDir, removeStateDir, sandboxDirs } from './helpers.ts';
import { type NetnsServer, startNetnsServer } from './netns.ts';

/** Addresses the override answers; 198.51.100.0/24 is documentation space nobody routes. */
export const API_ADDRESS = '198.51.100.10';
export const OTHER_ADDRESS = '198.51.100.11';
/** Inside the runner's own link range (10.231/16), so a packet to it never leaves the host. */
export const REBIND_ADDRESS = '10.231.255.253';

export let stateDir: string;
export let runner: Runner;
let http: Server;
export let httpPort: number;
let hostListener: TcpServer;
export let hostListenerPort: number;
export let hostAccepted = 0;
export const paths: string[] = [];
/** A listener in a namespace of this file's own, reached by forwarding: the fast path's target. */
export let far: NetnsServer;

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

/** Registers the calling file's hooks: its own runner and listeners, closed after its tests. */
export function useNetworkFixture(): void {
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
}

export interface Ran {
  stdout: string;
  events: SandboxEvent[];
  network: NetworkEvent[];
  exitCode: number;
  sandbox: Sandbox;
}

export async function startIn(
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

export const runIn = async (network: unknown, command: string[], options: { runtime?: string } = {}) =>
  (await startIn(network, command, options)).done;

export const python = (script: string) => ['python3', '-c', script];

/** Prints one line per attempt: `<label> ok <first bytes>` or `<label> fail <error class>`. */
export const PY_TRY = `
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

export function outcome(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label} `));
  return line?.split(' ')[1] ?? `missing (${stdout})`;
}
/** Connects to the namespace's listener, sends 400 bytes, reads to the end: `<label> ok far-hello <bytes>`. */
export const PY_FAR = (port: number) => `${PY_TRY}
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

export const FAST_MARK_DECIMAL = '1735917569'; // 0x67780001, as /proc/net/nf_conntrack prints it

export async function linkOf(sandbox: Sandbox): Promise<{ hostIf: string; sandboxAddress: string }> {
  const [link] = (await listLinks()).filter((l) => l.sandboxId === sandbox.id && l.kind === 'veth');
  const hostIf = link?.hostIf ?? '';
  const inet = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', hostIf], { encoding: 'utf8' });
  return { hostIf, sandboxAddress: /inet \S+ peer (\S+)\//.exec(inet)?.[1] ?? '' };
}

export function nftJson(args: string[]): {
  nftables: Record<string, { packets?: number; elem?: unknown[] }>[];
} {
  return JSON.parse(execFileSync('nft', ['-j', 'list', ...args], { encoding: 'utf8' }));
}

/** Packets the sandbox's fast-path rules accepted: the kernel's own count, not the runner's. */
export async function fastPackets(hostIf: string): Promise<number> {
  const listing = nftJson(['counter', 'inet', await ownTable(), `fast_${hostIf}`]);
  return listing.nftables.find((e) => e['counter'])?.['counter']?.packets ?? -1;
}

export async function setElements(hostIf: string, set: string): Promise<string> {
  const listing = nftJson(['set', 'inet', await ownTable(), `${set}_${hostIf}`]);
  return JSON.stringify(listing.nftables.find((e) => e['set'])?.['set']?.elem ?? []);
}

export function conntrackOf(address: string): string[] {
  return readFileSync('/proc/net/nf_conntrack', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`src=${address} `) && line.includes(`mark=${FAST_MARK_DECIMAL} `));
}

export async function goFile(sandbox: Sandbox): Promise<void> {
  const [dir] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(sandbox.id));
  await writeFile(join(dir ?? '', 'go'), '');
}
/** The one table of this file's runner, found by the instance its name carries. */
export async function ownTable(): Promise<string> {
  const tables = (await listRunnerTables(hostname())).filter(
    (t) => t.instanceId === runner.runtime.instanceId,
  );
  expect(tables).toHaveLength(1);
  return tables[0]?.name ?? '';
}

export function ruleset(): string {
  return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

export function links(): string {
  return execFileSync('ip', ['-d', 'link', 'show'], { encoding: 'utf8' });
}
