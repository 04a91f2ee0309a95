/**
 * bench/egress: from inside a sandbox to a server this benchmark starts in a network namespace of
 * its own (test/netns.ts: 203.0.113.k, routed over a veth, never leaving the host), (a) 200 MB
 * over one connection and (b) 1,000 sequential new connections each fetching 1 KiB, through the
 * runner's policy (`allow` and `public`), each both ways the runner can carry it: the kernel's
 * fast path (the default) and the in-process proxy (`fastPath: false`, the path of before), against
 * the unrestricted path (a `docker run` of the same image on Docker's default bridge, forwarded
 * and masqueraded to the same server). Rounds alternate the paths; median ratios.
 * Also sandbox start time (create to first output) with a policy (`public`) against without
 * (`none`, no link wired), alternated.
 *
 *   node scripts/run-ts.mjs bench/egress/main.ts [--rounds 5] [--megabytes 200] [--connections 1000]
 *     [--only throughput|start]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Runner } from '../../runner/index.ts';
import { HostNetworkManager } from '../../runner/network/index.ts';
import { currentInstanceId, isInstanceAlive } from '../../runner/runtime/index.ts';
import { startNetnsServer } from '../../test/netns.ts';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { median, ms, percentile } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    megabytes: { type: 'string', default: '200' },
    connections: { type: 'string', default: '1000' },
    only: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const bulkBytes = Number(values.megabytes) * 1024 * 1024;
const connections = Number(values.connections);
const IMAGE = 'grexal/agent';
const NAME = 'bench.test';

/**
 * The server, in a process of its own (so that it does not share the runner's event loop, which
 * relays the policy paths): `B` → bulkBytes then close; `S` → 1 KiB then close.
 */
const SERVER = (host: string) => `
const net = require('net');
const chunk = Buffer.alloc(1024 * 1024, 7), small = Buffer.alloc(1024, 7);
const server = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.once('data', (first) => {
    if (first[0] !== 0x42) return socket.end(small);
    let left = ${bulkBytes};
    const pump = () => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!socket.write(piece)) return socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
});
server.listen(0, '${host}', () => console.log(server.address().port));
`;

/** Runs inside the sandbox: prints `{ mbps, setupMs: [...] }` (set-up = connect to first byte). */
const client = (host: string, port: number) => `
const net = require('net');
const once = (first, onData) => new Promise((resolve, reject) => {
  const s = net.connect({ host: '${host}', port: ${port}, noDelay: true }, () => s.write(first));
  s.setTimeout(30000, () => s.destroy(new Error('stalled for 30 s')));
  s.on('data', onData); s.on('error', reject); s.on('close', resolve);
});
(async () => {
  let got = 0; const t0 = process.hrtime.bigint();
  await once('B', (d) => { got += d.length; });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (got !== ${bulkBytes}) throw new Error('short read ' + got);
  const setupMs = [];
  for (let i = 0; i < ${connections}; i++) {
    const t = process.hrtime.bigint(); let n = 0;
    await once('S', (d) => { n += d.length; });
    if (n !== 1024) throw new Error('short small read ' + n);
    setupMs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  console.log(JSON.stringify({ mbps: got / 1048576 / seconds, setupMs }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface Sample {
  mbps: number;
  setupP50: number;
  /** Who carried the bulk connection, from its audit event (policy paths only). */
  bulkVia?: string;
}

function summarise(stdout: string): Sample {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const { mbps, setupMs } = JSON.parse(line) as { mbps: number; setupMs: number[] };
  return { mbps, setupP50: percentile(setupMs, 50) };
}

function runProcess(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} exited ${code}`))));
  });
}

async function inSandbox(
  runner: Runner,
  network: unknown,
  command: string[],
): Promise<{ stdout: string; firstOutputMs: number; bulkVia?: string }> {
  const t0 = performance.now();
  const sandbox = await runner.create({ image: IMAGE, command, network });
  let stdout = '';
  let firstOutputMs = Number.NaN;
  let bulkVia: string | undefined;
  sandbox.onEvent((event) => {
    // Who carried the bulk connection (the one large download): the kernel or the proxy.
    if (event.type === 'network' && event.kind === 'tcp' && event.bytesDown > bulkBytes / 2)
      bulkVia = event.via;
    if (event.type !== 'log' || event.stream !== 'stdout') return;
    if (Number.isNaN(firstOutputMs)) firstOutputMs = performance.now() - t0;
    stdout += event.text;
  });
  await sandbox.start();
  const exit = await sandbox.exited;
  if (exit.exitCode !== 0) throw new Error(`sandbox exited ${exit.exitCode}`);
  return { stdout, firstOutputMs, bulkVia };
}

const server = await startNetnsServer(SERVER);
const stateDir = mkdtempSync(join(tmpdir(), 'bench-egress-'));
const override = { [NAME]: { address: server.address } };
/**
 * Where the wiring's time goes, from the runners' own debug records (network-wiring.ts): the
 * host side prepared while the engine creates the container, and after start the pid and the
 * move, which the bootstrap waits for.
 */
const wiring: Record<string, Record<string, number[]>> = { helper: {}, spawned: {} };
const recorder = (which: 'helper' | 'spawned') =>
  pino(
    { level: 'debug' },
    {
      write(line: string) {
        const record = JSON.parse(line) as Record<string, unknown>;
        // A `none` start prepares and attaches nothing, in 0 ms: not the wiring measured here.
        if (record['prepareMs'] === 0 || record['attachMs'] === 0 || record['mode'] === 'none') return;
        for (const key of ['prepareMs', 'pidMs', 'attachMs', 'bootstrapWaitMs']) {
          const value = record[key];
          if (typeof value !== 'number') continue;
          const list = wiring[which]![key] ?? [];
          list.push(value);
          wiring[which]![key] = list;
        }
      },
    },
  );
const runner = await Runner.start({ stateDir, dangerouslyOverrideDns: override, logger: recorder('helper') });
// The path of before, in the same run: the same wiring with every allowed flow through the proxy.
const proxyStateDir = mkdtempSync(join(tmpdir(), 'bench-egress-proxy-'));
const proxyRunner = await Runner.start({
  stateDir: proxyStateDir,
  network: new HostNetworkManager({
    instanceId: currentInstanceId(),
    logger: pino({ level: 'silent' }),
    isInstanceAlive,
    dangerouslyOverrideDns: override,
    fastPath: false,
  }),
});
// A peer in the same run: no fast path (its smaller table) and the pair made by spawned ip/nsenter.
const beforeStateDir = mkdtempSync(join(tmpdir(), 'bench-egress-before-'));
const beforeRunner = await Runner.start({
  stateDir: beforeStateDir,
  logger: recorder('spawned'),
  network: new HostNetworkManager({
    instanceId: currentInstanceId(),
    logger: pino({ level: 'silent' }),
    isInstanceAlive,
    fastPath: false,
    linkHelper: false,
  }),
});
const cleanup = async () => {
  await Promise.all([runner.close(), proxyRunner.close(), beforeRunner.close()]);
  server.close();
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(proxyStateDir, { recursive: true, force: true });
  rmSync(beforeStateDir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().then(() => process.exit(130)));
}

/** A sample whose connection stalls (the shared machine's bridge dropped one once) is taken again. */
async function retried(name: string, sample: () => Promise<Sample>): Promise<Sample> {
  try {
    return await sample();
  } catch (error) {
    console.log(`  ${name}: ${(error as Error).message}; taking the sample again`);
    return sample();
  }
}

async function throughput(): Promise<void> {
  const peerArgs = dockerRunArgs({
    image: IMAGE,
    hostRunDir: stateDir,
    label: `grexal.bench=egress-${process.pid}`,
    command: ['node', '-e', client(server.address, server.port)],
  });
  const viaPolicy = (r: Runner, network: unknown) => async () => {
    const ran = await inSandbox(r, network, ['node', '-e', client(NAME, server.port)]);
    return { ...summarise(ran.stdout), bulkVia: ran.bulkVia };
  };
  const allow = { mode: 'allow', allow: [NAME] };
  const paths: Record<string, () => Promise<Sample>> = {
    unrestricted: async () => summarise(await runProcess(DOCKER, peerArgs)),
    'allow (kernel)': viaPolicy(runner, allow),
    'public (kernel)': viaPolicy(runner, 'public'),
    'allow (proxy)': viaPolicy(proxyRunner, allow),
    'public (proxy)': viaPolicy(proxyRunner, 'public'),
  };
  const names = Object.keys(paths).filter((n) => n !== 'unrestricted');
  // Each sample is paired with an unrestricted one taken right beside it (order alternating):
  // on a shared machine the load drifts within a round, and a ratio of neighbours cancels it.
  const ratios: Record<string, { mbps: number; setup: number }[]> = Object.fromEntries(
    names.map((n) => [n, []]),
  );
  console.log(
    `bench/egress: ${rounds} rounds of ${values.megabytes} MB + ${connections} connections, each path paired with an unrestricted sample, alternated`,
  );
  for (const name of ['unrestricted', ...names]) await retried(name, paths[name]!); // warm-up, not counted
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    const line: string[] = [];
    for (const [k, name] of order.entries()) {
      const pair = (round + k) % 2 === 0 ? ['unrestricted', name] : [name, 'unrestricted'];
      const got: Record<string, Sample> = {};
      for (const which of pair) got[which] = await retried(which, paths[which]!);
      const [peer, own] = [got['unrestricted']!, got[name]!];
      ratios[name]!.push({ mbps: own.mbps / peer.mbps, setup: own.setupP50 - peer.setupP50 });
      line.push(
        `${name} ${own.mbps.toFixed(0)}/${peer.mbps.toFixed(0)} MB/s p50 ${ms(own.setupP50)}/${ms(peer.setupP50)} via ${own.bulkVia ?? '?'}`,
      );
    }
    console.log(`  round ${round + 1} (path/unrestricted): ${line.join('  |  ')}`);
  }
  for (const name of names) {
    const ratio = median(ratios[name]!.map((r) => r.mbps));
    const added = median(ratios[name]!.map((r) => r.setup));
    console.log(
      `${name}: throughput ratio ${ratio.toFixed(3)} (target ≥ 0.8), added set-up p50 ${ms(added)} (target ≤ 1 ms)`,
    );
  }
}

/** Start time: each `public` start paired with a `none` start beside it, order alternating. */
async function startTime(): Promise<void> {
  const echo = ['node', '-e', 'console.log(1)'];
  const variants: Record<string, Runner> = {
    public: runner,
    'public (no helper, no fast path)': beforeRunner,
  };
  const ratios: Record<string, number[]> = { public: [], 'public (no helper, no fast path)': [] };
  const firsts: Record<string, number[]> = { public: [], 'public (no helper, no fast path)': [], none: [] };
  for (const r of [runner, beforeRunner]) await inSandbox(r, 'public', echo); // tables made, helpers up
  await inSandbox(runner, 'none', echo);
  for (const which of Object.values(wiring)) for (const key of Object.keys(which)) which[key] = [];
  for (let round = 0; round < rounds * 4; round++) {
    const names = round % 2 === 0 ? Object.keys(variants) : Object.keys(variants).reverse();
    for (const [k, name] of names.entries()) {
      const noneFirst = (round + k) % 2 === 0;
      const take = (r: Runner, network: string) =>
        inSandbox(r, network, echo).then((result) => result.firstOutputMs);
      const a = noneFirst ? await take(runner, 'none') : await take(variants[name]!, 'public');
      const b = noneFirst ? await take(variants[name]!, 'public') : await take(runner, 'none');
      const [own, none] = noneFirst ? [b, a] : [a, b];
      firsts[name]!.push(own);
      firsts['none']!.push(none);
      ratios[name]!.push(own / none);
    }
  }
  for (const name of Object.keys(variants)) {
    console.log(
      `start to first output, ${name}: ${ms(median(firsts[name]!))} against none ${ms(median(firsts['none']!))}, median ratio ${median(ratios[name]!).toFixed(3)} (target ≤ 1.05)`,
    );
  }
  for (const [which, records] of Object.entries(wiring)) {
    const parts = ['prepareMs', 'pidMs', 'attachMs', 'bootstrapWaitMs'].map(
      (key) => `${key.replace('Ms', '')} ${records[key]?.length ? ms(median(records[key]!)) : '-'}`,
    );
    console.log(
      `wiring of public, ${which} (medians): ${parts.join(', ')} (the bootstrap's wait, when it waited)`,
    );
  }
}

try {
  if (values.only !== 'start') await throughput();
  if (values.only !== 'throughput') await startTime();
} finally {
  await cleanup();
}
