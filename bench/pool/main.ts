/**
 * bench/pool: from `POST /v1/sandboxes` to the agent's first output line (`sh -c 'echo 1'`, then
 * `node -e 'console.log(1)'`), warm
 * (served by a pool entry) against cold (the same request naming no pool that matches) through the
 * same `grexal serve`, against `docker run` of the same image and hardening flags (to its first
 * output line), alternated, in one run. Then N concurrent claims from a pool of N, and the memory
 * each idle entry holds (its cgroup's usage, and the runner's RSS per entry). Removes all it makes.
 * The concurrent bursts alternate with bursts of as many concurrent `docker run`s (the peer),
 * after one warm-up burst of each side that is not counted. In a burst the client follows each
 * run's event stream to its `exit`, as an orchestrator does (and reports line → exit, which holds
 * the run's teardown); it no longer closes 20 streams at their first lines inside the burst.
 * `--part desktop` (not in `all`: it takes minutes) times a desktop pool's claim → takeover first
 * frame against a cold desktop sandbox (bench/pool/desktop.ts).
 *
 *   node scripts/run-ts.mjs bench/pool/main.ts [--rounds 20] [--concurrency 20] [--bursts 5]
 *     [--part all|sequential|concurrent|desktop] [--baseline DIR] [--desktop-rounds 10] [--plain-tab]
 *     [--linger S]
 *
 * `--linger S`: in the concurrent bursts, every agent (each side's, the peer's) stays S seconds after
 * its line, so that no sandbox of a burst ends within it. The engine's work for containers that
 * exit (a burst's first ones do, while its last claims are still served) then falls after it: the
 * difference to a run without it is what those exits cost the burst's claims.
 *
 * `--plain-tab` (with `--part desktop`, not with `--baseline`) opens each link in a tab no tool
 * attaches to and takes the first frame from the page's own report (bench/lib/plain-tab.ts),
 * read from this build's `grexal serve` log.
 *
 * `--baseline DIR` runs the concurrent bursts (and `--part desktop`'s samples) against a second
 * `grexal serve` from another build (a checkout of an earlier revision with its own `npm run build`)
 * too, rotated with this build's and the peer's in one run: a before/after under the same machine
 * state.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RunnerClient } from '../../runner/client/index.ts';
import type { ViewerTiming } from '../../runner/takeover/index.ts';
import { removeLabelled } from '../api/peer.ts';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { timingOfLogLine } from '../lib/plain-tab.ts';
import { cpuLine, cpuMark, machineQuiet } from '../lib/proc-cpu.ts';
import { type ServeChild, startServe } from '../lib/serve-child.ts';
import { median, ms, percentile } from '../lib/stats.ts';
import { benchApi } from './api.ts';
import { desktopPart } from './desktop.ts';
import { entryMemory } from './memory.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '20' },
    bursts: { type: 'string', default: '5' },
    part: { type: 'string', default: 'all' },
    baseline: { type: 'string' },
    'desktop-rounds': { type: 'string', default: '10' },
    'plain-tab': { type: 'boolean', default: false },
    linger: { type: 'string', default: '0' },
  },
});
const PART = values.part;
if (values['plain-tab'] && values.baseline)
  throw new Error(
    '--plain-tab takes the page timing reports, which an older build may not have: not with --baseline',
  );
/** --plain-tab: where this build's timing reports go (desktop.ts sets it once its tabs are open). */
const timings: { to?: (t: ViewerTiming) => void } = {};
const BURSTS = Number(values.bursts);
const ROUNDS = Number(values.rounds);
const N = Number(values.concurrency);
const IMAGE = 'grexal/agent';
const COMMANDS = [
  ['sh', '-c', 'echo 1'],
  ['node', '-e', 'console.log(1)'],
];
/** The burst's command: the cheapest agent, so that what is timed is the claim and the start. */
const COMMAND = COMMANDS[0]!;
const LINGER_S = Number(values.linger);
if (!(LINGER_S >= 0 && LINGER_S <= 60)) throw new Error('--linger takes 0..60 (seconds)');
const BURST_COMMAND = LINGER_S > 0 ? ['sh', '-c', `echo 1; sleep ${LINGER_S}`] : COMMAND;
const TOKEN = randomBytes(16).toString('hex');
const PEER_LABEL = `grexal.bench=pool-${process.pid}`;
const MiB = 1024 * 1024;
const stateDir = mkdtempSync(join(tmpdir(), 'bench-pool-state-'));
const peerRunDir = mkdtempSync(join(tmpdir(), 'bench-pool-peer-'));

function startRunner(dir: string, root?: string): Promise<ServeChild> {
  const onLog = (entry: Record<string, unknown>) => {
    const timing = timingOfLogLine(entry);
    if (timing) timings.to?.(timing);
  };
  return startServe(
    ['--max-sandboxes', String(N + 20), '--pool', `sh=${IMAGE},size=2`],
    { stateDir: dir, token: TOKEN, passLogs: true, ...(values['plain-tab'] ? { onLog } : {}) },
    root,
  );
}

const api = (method: string, path: string, body?: unknown, base: string = url) =>
  benchApi(base, TOKEN).call(method, path, body);
const waitReady = (pool: string, ready: number, base: string = url) =>
  benchApi(base, TOKEN).waitReady(pool, ready);
let url = '';

/** POST → its answer, every sample: where the claim itself ends and the agent's start begins. */
const postMs: number[] = [];

/**
 * POST → the first output line of the agent, over SSE; checks warm is what was meant. With
 * `onExit`, the stream is read on after the line and `onExit` gets line → `exit` event (the run's
 * teardown included: the runner sends `exit` once nothing of the run is left).
 */
async function claimToFirstLine(
  client: RunnerClient,
  warm: boolean,
  pool?: string,
  command = COMMAND,
  onExit?: (lineToExitMs: number) => void,
): Promise<number> {
  const started = performance.now();
  const created = await client.create({ image: IMAGE, command, ...(pool ? { pool } : {}) });
  if (created.warm !== warm) throw new Error(`${created.id}: warm ${created.warm}, meant ${warm}`);
  postMs.push(performance.now() - started);
  const events = client.events(created.id);
  for (;;) {
    const { value: event, done } = await events.next();
    if (done) throw new Error(`${created.id}: the stream ended without output`);
    if (event.type === 'exit') throw new Error(`${created.id} ended before its output: ${event.reason}`);
    if (event.type !== 'log' || !event.text.includes('1')) continue;
    const lineAt = performance.now();
    if (!onExit) await events.return();
    else
      void untilExit(events).then(
        () => onExit(performance.now() - lineAt),
        () => {}, // not counted: the burst's report says how many exits it saw
      );
    return lineAt - started;
  }
}

async function untilExit(events: AsyncGenerator<{ type: string }>): Promise<void> {
  for await (const event of events) if (event.type === 'exit') return;
}

/** `docker run` (attached) of the same image and flags, to its first output line. */
function dockerRunToFirstLine(command = COMMAND): Promise<number> {
  const args = dockerRunArgs({ image: IMAGE, hostRunDir: peerRunDir, label: PEER_LABEL, command });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(DOCKER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let at: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      if (at === undefined && out.includes('1\n')) at = performance.now() - started;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      at !== undefined ? resolve(at) : reject(new Error(`docker run exited ${code}`)),
    );
  });
}

const line = (name: string, xs: number[]) =>
  `${name} p50 ${ms(percentile(xs, 50))}  p99 ${ms(percentile(xs, 99))}  (n=${xs.length})`;

async function sequential(client: RunnerClient, command: string[]): Promise<void> {
  console.log(
    `bench/pool: claim → first output line of \`${command.join(' ')}\`, ${ROUNDS} rounds alternated`,
  );
  const warm: number[] = [];
  const cold: number[] = [];
  const peer: number[] = [];
  const warmRatio: number[] = [];
  const coldRatio: number[] = [];
  const sides: [string, () => Promise<number>][] = [
    [
      'warm',
      async () => {
        // Timed from the POST: the wait for a refilled pool is outside the sample.
        await waitReady('sh', 2);
        return claimToFirstLine(client, true, undefined, command);
      },
    ],
    // A pool named but not matching any: the same request, served cold.
    ['cold', () => claimToFirstLine(client, false, 'nonesuch', command)],
    ['docker', () => dockerRunToFirstLine(command)],
  ];
  for (const [, run] of sides) await run(); // warm-up, not counted
  for (let i = 0; i < ROUNDS; i++) {
    // Rotate the order every round: no side always follows the same other side.
    const order = [...sides.slice(i % 3), ...sides.slice(0, i % 3)];
    const got: Record<string, number> = {};
    for (const [name, run] of order) got[name] = await run();
    warm.push(got['warm']!);
    cold.push(got['cold']!);
    peer.push(got['docker']!);
    warmRatio.push(got['warm']! / got['docker']!);
    coldRatio.push(got['cold']! / got['docker']!);
    console.log(
      `  round ${i + 1}: warm ${ms(got['warm']!)}  cold ${ms(got['cold']!)}  docker run ${ms(got['docker']!)}`,
    );
  }
  console.log(`\`${command.join(' ')}\`:`);
  console.log(line('warm (pool entry) ', warm));
  console.log(line('cold (same API)   ', cold));
  console.log(line(`docker run (${DOCKER})`, peer));
  console.log(
    `median ratio warm/docker run ${median(warmRatio).toFixed(3)} (target ≤ 0.2), cold/docker run ${median(coldRatio).toFixed(3)}, warm/cold ${(median(warm) / median(cold)).toFixed(3)}`,
  );
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

interface Side {
  name: string;
  client: RunnerClient;
  base: string;
}

async function concurrent(sides: Side[], runnerPid: number): Promise<void> {
  // Each side's burst p95 of line → exit, the warm-up burst's first.
  const lineToExit = new Map<string, number[]>(sides.map((side) => [side.name, []]));
  for (const side of sides) await api('DELETE', '/v1/pools/sh', undefined, side.base);
  await dockerRunToFirstLine(); // warm-up of the peer, not counted
  const rssBefore = rssBytes(runnerPid);
  for (const side of sides) await api('PUT', '/v1/pools/c', { image: IMAGE, size: N }, side.base);
  for (const side of sides) await waitReady('c', N, side.base);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const memory = (await entryMemory(runnerPid)).map((entry) => entry.bytes);
  const rssWith = rssBytes(runnerPid);
  console.log(
    `idle entry memory (cgroup usage, ${memory.length} entries): median ${(median(memory) / MiB).toFixed(1)} MiB, max ${(Math.max(...memory) / MiB).toFixed(1)} MiB; runner RSS ${(rssBefore / MiB).toFixed(1)} → ${(rssWith / MiB).toFixed(1)} MiB (${((rssWith - rssBefore) / N / MiB).toFixed(2)} MiB per entry)`,
  );
  // Several bursts, every pool full before each (no refill of one side under another's burst):
  // one burst on a shared machine says little. The sides' bursts and the peer's (as many
  // concurrent `docker run`s) rotate every round. And the machine quiet before each: a burst
  // that follows 20 refills or 20 `docker run --rm`s otherwise meets their tail (the engine's
  // and the kernel's cleanups run for seconds after), which the first burst of a round paid
  // whichever side it was.
  const allFull = async () => {
    for (const side of sides) await waitReady('c', N, side.base);
    const stillBusy = await machineQuiet();
    if (stillBusy !== undefined)
      console.log(`    (the machine was still ${Math.round(stillBusy * 100)} % busy after 20 s)`);
  };
  const bursts: [string, () => Promise<number[]>][] = [
    ...sides.map((side): [string, () => Promise<number[]>] => [
      side.name,
      async () => {
        await allFull();
        postMs.length = 0;
        const exits: number[] = [];
        const cpu = cpuMark();
        const times = await Promise.all(
          Array.from({ length: N }, () =>
            claimToFirstLine(side.client, true, undefined, BURST_COMMAND, (lineToExit) =>
              exits.push(lineToExit),
            ),
          ),
        );
        // Who had the two cores while the claims waited for their lines.
        console.log(`    ${side.name}: CPU from the POSTs to the last first line: ${cpuLine(cpu)}`);
        // Bounded: each run's exit follows its agent's (a --linger agent's after S seconds).
        for (let i = 0; exits.length < N && i < 200 + LINGER_S * 20; i++)
          await new Promise((resolve) => setTimeout(resolve, 50));
        console.log(
          `    ${side.name}: POSTs answered p50 ${ms(percentile(postMs, 50))}  p95 ${ms(percentile(postMs, 95))}; first line → exit event p50 ${ms(percentile(exits, 50))}  p95 ${ms(percentile(exits, 95))} (n=${exits.length})`,
        );
        lineToExit.get(side.name)?.push(percentile(exits, 95));
        return times;
      },
    ]),
    [
      'docker run',
      async () => {
        await allFull();
        return Promise.all(Array.from({ length: N }, () => dockerRunToFirstLine(BURST_COMMAND)));
      },
    ],
  ];
  // One burst of each first, not counted: a process's first burst pays what its later ones do not
  // (the runner's claim path and the client's fetch compiled and warmed, its first connections).
  // In traces of the runner and the bench, the first burst's POSTs reached the runner up to 700 ms
  // after they were sent, and its event streams opened as late; the sequential part warms up alike.
  for (const [name, run] of bursts) {
    const times = await run();
    console.log(`  warm-up burst (not counted), ${name}: p95 ${ms(percentile(times, 95))}`);
  }
  const p95s = new Map<string, number[]>(bursts.map(([name]) => [name, []]));
  const ratios = new Map<string, number[]>(sides.map((side) => [side.name, []]));
  for (let round = 0; round < BURSTS; round++) {
    const order = [...bursts.slice(round % bursts.length), ...bursts.slice(0, round % bursts.length)];
    const got = new Map<string, number[]>();
    for (const [name, run] of order) got.set(name, await run());
    const peer = percentile(got.get('docker run')!, 95);
    for (const [name, times] of got) p95s.get(name)!.push(percentile(times, 95));
    for (const [name, list] of ratios) list.push(percentile(got.get(name)!, 95) / peer);
    console.log(
      `  round ${round + 1}: ${N} concurrent, claim → first line: ${[...got].map(([name, times]) => `${name} p50 ${ms(percentile(times, 50))} p95 ${ms(percentile(times, 95))}`).join(';  ')}`,
    );
  }
  for (const [name, list] of p95s)
    console.log(
      `${N} concurrent ${name === 'docker run' ? 'docker runs' : `claims from a pool of ${N} (${name})`}: median p95 over ${BURSTS} rounds ${ms(median(list))}${name === 'docker run' ? '' : ' (target ≤ 200 ms)'}`,
    );
  for (const [name, list] of ratios)
    console.log(`median ratio of p95s, ${name} / docker run: ${median(list).toFixed(3)}`);
  for (const [name, list] of lineToExit)
    console.log(
      `first line → exit event (${name}): median p95 over the counted rounds ${ms(median(list.slice(1)))}`,
    );
  for (const side of sides) await api('DELETE', '/v1/pools/c', undefined, side.base);
}

const baselineStateDir = mkdtempSync(join(tmpdir(), 'bench-pool-base-'));
const { child, url: served } = await startRunner(stateDir);
url = served;
const baseline =
  values.baseline && (PART === 'all' || PART === 'concurrent' || PART === 'desktop')
    ? await startRunner(baselineStateDir, values.baseline)
    : undefined;
try {
  const client = new RunnerClient({ baseUrl: url, token: TOKEN, timeoutMs: 120_000 });
  if (PART === 'all' || PART === 'sequential')
    for (const command of COMMANDS) await sequential(client, command);
  const sides: Side[] = [{ name: 'this build', client, base: url }];
  if (baseline)
    sides.push({
      name: 'baseline',
      client: new RunnerClient({ baseUrl: baseline.url, token: TOKEN, timeoutMs: 120_000 }),
      base: baseline.url,
    });
  if (PART === 'all' || PART === 'concurrent') await concurrent(sides, child.pid!);
  if (PART === 'desktop')
    await desktopPart({
      builds: sides.map((side) => ({
        name: side.name,
        client: side.client,
        api: benchApi(side.base, TOKEN),
      })),
      rounds: Number(values['desktop-rounds']),
      runnerPid: child.pid!,
      agentPool: { name: 'sh', size: 2 },
      ...(values['plain-tab'] ? { timings } : {}),
    });
} finally {
  for (const serving of [child, baseline?.child]) {
    if (!serving || serving.exitCode !== null) continue;
    const exited = new Promise((resolve) => serving.once('exit', resolve));
    serving.kill('SIGTERM');
    await exited;
  }
  await removeLabelled(PEER_LABEL).catch((error: unknown) => console.error(`cleanup: ${error}`));
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(baselineStateDir, { recursive: true, force: true });
  rmSync(peerRunDir, { recursive: true, force: true });
}
