/**
 * bench/egress: from inside a sandbox to a server this benchmark starts on the host, (a) 200 MB
 * over one connection and (b) 1,000 sequential new connections each fetching 1 KiB, through the
 * runner's policy (`allow` and `public`: veth, nftables redirect, in-process proxy) against the
 * unrestricted path of before (a `docker run` of the same image on Docker's default bridge,
 * reaching the host through the bridge gateway). Rounds alternate the three paths; median ratios.
 * Also sandbox start time (create to first output) with a policy (`public`) against without
 * (`none`, no link wired).
 *
 *   node scripts/run-ts.mjs bench/egress/main.ts [--rounds 5] [--megabytes 200] [--connections 1000]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Runner } from '../../runner/index.ts';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { median, ms, percentile } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    megabytes: { type: 'string', default: '200' },
    connections: { type: 'string', default: '1000' },
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

async function startServer(host: string): Promise<{ port: number; close: () => void }> {
  const child = spawn(process.execPath, ['-e', SERVER(host)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the bench server exited ${code}`)));
  });
  return { port, close: () => child.kill() };
}

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
): Promise<{ stdout: string; firstOutputMs: number }> {
  const t0 = performance.now();
  const sandbox = await runner.create({ image: IMAGE, command, network });
  let stdout = '';
  let firstOutputMs = Number.NaN;
  sandbox.onEvent((event) => {
    if (event.type !== 'log' || event.stream !== 'stdout') return;
    if (Number.isNaN(firstOutputMs)) firstOutputMs = performance.now() - t0;
    stdout += event.text;
  });
  await sandbox.start();
  const exit = await sandbox.exited;
  if (exit.exitCode !== 0) throw new Error(`sandbox exited ${exit.exitCode}`);
  return { stdout, firstOutputMs };
}

/** docker0's own address: where a container on the default bridge reaches the host. */
const bridgeGateway = /inet (\S+)\//.exec(
  execFileSync('ip', ['-4', '-o', 'addr', 'show', 'docker0'], { encoding: 'utf8' }),
)?.[1];
if (!bridgeGateway) throw new Error('docker0 has no IPv4 address: is the engine up with its default bridge?');
const viaProxy = await startServer('127.0.0.1');
const viaBridge = await startServer(bridgeGateway);
const portOf = (server: { port: number }) => server.port;
const stateDir = mkdtempSync(join(tmpdir(), 'bench-egress-'));
const runner = await Runner.start({
  stateDir,
  dangerouslyOverrideDns: { [NAME]: { address: '198.51.100.20', dialHost: '127.0.0.1' } },
});
const cleanup = async () => {
  await runner.close();
  viaProxy.close();
  viaBridge.close();
  rmSync(stateDir, { recursive: true, force: true });
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

try {
  const peerArgs = dockerRunArgs({
    image: IMAGE,
    hostRunDir: stateDir,
    label: `grexal.bench=egress-${process.pid}`,
    command: ['node', '-e', client(bridgeGateway, portOf(viaBridge))],
  });
  const paths: Record<string, () => Promise<Sample>> = {
    unrestricted: async () => summarise(await runProcess(DOCKER, peerArgs)),
    allow: async () =>
      summarise(
        (
          await inSandbox(runner, { mode: 'allow', allow: [NAME] }, [
            'node',
            '-e',
            client(NAME, portOf(viaProxy)),
          ])
        ).stdout,
      ),
    public: async () =>
      summarise((await inSandbox(runner, 'public', ['node', '-e', client(NAME, portOf(viaProxy))])).stdout),
  };
  const names = Object.keys(paths);
  const samples: Record<string, Sample[]> = Object.fromEntries(names.map((n) => [n, []]));
  console.log(
    `bench/egress: ${rounds} rounds of ${values.megabytes} MB + ${connections} connections, paths alternated`,
  );
  for (const name of names) await retried(name, paths[name]!); // warm-up, not counted
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) samples[name]!.push(await retried(name, paths[name]!));
    const line = names.map((n) => {
      const s = samples[n]!.at(-1)!;
      return `${n} ${s.mbps.toFixed(0)} MB/s p50 ${ms(s.setupP50)}`;
    });
    console.log(`  round ${round + 1}: ${line.join('  |  ')}`);
  }
  const base = samples['unrestricted']!;
  for (const name of ['allow', 'public']) {
    const s = samples[name]!;
    const throughput = median(s.map((x, i) => x.mbps / base[i]!.mbps));
    const added = median(s.map((x, i) => x.setupP50 - base[i]!.setupP50));
    console.log(
      `${name}: throughput ratio ${throughput.toFixed(3)} (target ≥ 0.8), added set-up p50 ${ms(added)} (target ≤ 1 ms)`,
    );
  }

  const startRatios: number[] = [];
  const starts = { public: [] as number[], none: [] as number[] };
  const echo = ['node', '-e', 'console.log(1)'];
  await inSandbox(runner, 'public', echo);
  await inSandbox(runner, 'none', echo);
  for (let round = 0; round < rounds * 2; round++) {
    const first = round % 2 === 0 ? 'public' : 'none';
    const second = first === 'public' ? 'none' : 'public';
    const a = (await inSandbox(runner, first, echo)).firstOutputMs;
    const b = (await inSandbox(runner, second, echo)).firstOutputMs;
    starts[first].push(a);
    starts[second].push(b);
    startRatios.push(first === 'public' ? a / b : b / a);
  }
  console.log(
    `start to first output: public ${ms(median(starts.public))}, none ${ms(median(starts.none))}, median ratio ${median(startRatios).toFixed(3)} (target ≤ 1.05)`,
  );
} finally {
  await cleanup();
}
