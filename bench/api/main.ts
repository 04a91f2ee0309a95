/**
 * bench/api: N concurrent creates of grexal/agent sandboxes through `grexal serve`, timed from the
 * POST until the sandbox's `running` event arrives over SSE, against N concurrent `docker run -d` of
 * the same image and hardening flags (returning once the container runs), alternated rounds in the
 * same run; then the runner's own RSS with 50 idle sandboxes. Everything it creates is removed.
 *
 *   node scripts/run-ts.mjs bench/api/main.ts [--rounds 5] [--concurrency 20] [--idle 50]
 *                                             [--peer-entrypoint tini|image]
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RunnerClient } from '../../runner/client/index.ts';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { type ServeChild, startServe } from '../lib/serve-child.ts';
import { median, ms, percentile } from '../lib/stats.ts';
import { docker, removeLabelled } from './peer.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
    idle: { type: 'string', default: '50' },
    /** `image` runs the peer with the image's own entrypoint (diagnosis: what the supervisor costs). */
    'peer-entrypoint': { type: 'string', default: 'tini' },
  },
});
const ROUNDS = Number(values.rounds);
const N = Number(values.concurrency);
const IDLE = Number(values.idle);
const IMAGE = 'grexal/agent';
const TOKEN = randomBytes(16).toString('hex');
const PEER_LABEL = `grexal.bench=api-${process.pid}`;
const MiB = 1024 * 1024;

const stateDir = mkdtempSync(join(tmpdir(), 'bench-api-state-'));
const peerRunDir = mkdtempSync(join(tmpdir(), 'bench-api-peer-'));

/** `grexal serve` as a child process, as an operator runs it; resolves with its URL. */
function startRunner(): Promise<ServeChild> {
  return startServe(['--max-sandboxes', String(Math.max(N, IDLE) + 10)], { stateDir, token: TOKEN });
}

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** Creates one sandbox and resolves with its id and the ms until its `running` event. */
async function createUntilRunning(
  client: RunnerClient,
  command: string[],
): Promise<{ id: string; ms: number; runnerMs: number }> {
  const started = performance.now();
  const wall = Date.now();
  const { id } = await client.create({ image: IMAGE, command });
  for await (const event of client.events(id)) {
    if (event.type === 'state' && event.state === 'running') {
      // `at` is when the runner saw it running; the main figure also counts the event's delivery.
      return { id, ms: performance.now() - started, runnerMs: event.at - wall };
    }
    if (event.type === 'exit') throw new Error(`${id} ended before running: ${event.reason}`);
  }
  throw new Error(`${id}: the stream ended without running`);
}

/** Milliseconds until the runner itself saw each sandbox running, over every API round. */
const runnerSaw: number[] = [];

async function apiRound(client: RunnerClient): Promise<number[]> {
  const results = await Promise.allSettled(
    Array.from({ length: N }, () => createUntilRunning(client, ['sleep', '60'])),
  );
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  await Promise.all(ok.map((r) => client.delete(r.id)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  runnerSaw.push(...ok.map((r) => r.runnerMs));
  return ok.map((r) => r.ms);
}

async function dockerRound(): Promise<number[]> {
  const entrypoint = values['peer-entrypoint'] === 'image' ? 'image' : 'tini';
  const args = dockerRunArgs({
    image: IMAGE,
    hostRunDir: peerRunDir,
    label: PEER_LABEL,
    command: ['sleep', '60'],
    detach: true,
    entrypoint,
  });
  const times = await Promise.all(
    Array.from({ length: N }, async () => {
      const started = performance.now();
      await docker(args);
      return performance.now() - started;
    }),
  );
  await removeLabelled(PEER_LABEL);
  return times;
}

const line = (name: string, xs: number[]) =>
  `${name} p50 ${ms(percentile(xs, 50))}  p95 ${ms(percentile(xs, 95))}`;

async function startLatency(client: RunnerClient): Promise<void> {
  console.log(
    `bench/api: ${N} concurrent creates, ${ROUNDS} rounds alternated, after one warm-up round each`,
  );
  await apiRound(client);
  await dockerRound();
  runnerSaw.length = 0;
  const api: number[] = [];
  const peer: number[] = [];
  const ratios50: number[] = [];
  const ratios95: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Swap the order every other round: neither side always runs right after the other's cleanup.
    let a: number[];
    let b: number[];
    if (i % 2 === 0) {
      a = await apiRound(client);
      b = await dockerRound();
    } else {
      b = await dockerRound();
      a = await apiRound(client);
    }
    api.push(...a);
    peer.push(...b);
    ratios50.push(percentile(a, 50) / percentile(b, 50));
    ratios95.push(percentile(a, 95) / percentile(b, 95));
    console.log(
      `  round ${i + 1}: ${line('api', a)} | ${line('docker run -d', b)} | p50 ratio ${ratios50.at(-1)!.toFixed(3)}`,
    );
  }
  console.log(line('grexal serve API (to running)  ', api));
  console.log(line('  (as the runner saw it, no SSE)', runnerSaw));
  console.log(line(`docker run -d (${DOCKER})`, peer));
  console.log(
    `median ratio p50 ${median(ratios50).toFixed(3)}, p95 ${median(ratios95).toFixed(3)} (target ≤ 1.2)`,
  );
}

async function idleMemory(client: RunnerClient, pid: number): Promise<void> {
  const before = rssBytes(pid);
  const ids: string[] = [];
  try {
    // In batches of N, as an orchestrator ramping up would.
    for (let made = 0; made < IDLE; made += N) {
      const batch = Array.from({ length: Math.min(N, IDLE - made) }, () =>
        createUntilRunning(client, ['sleep', '600']),
      );
      for (const r of await Promise.allSettled(batch)) {
        if (r.status === 'fulfilled') ids.push(r.value.id);
        else throw r.reason;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const samples = [];
    for (let i = 0; i < 5; i++) {
      samples.push(rssBytes(pid));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    console.log(
      `runner RSS: ${(before / MiB).toFixed(1)} MiB idle before, ${(Math.max(...samples) / MiB).toFixed(1)} MiB with ${ids.length} idle sandboxes (target ≤ 150 MiB)`,
    );
  } finally {
    await Promise.allSettled(ids.map((id) => client.delete(id)));
  }
}

async function stopRunner(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function checkRunnerLeftNothing(pid: number | undefined): Promise<void> {
  const runners = await docker([
    'ps',
    '-a',
    '--filter',
    'label=grexal.runner',
    '--format',
    '{{.Label "grexal.runner"}}',
  ]);
  const ours = runners.split('\n').filter((r) => r.startsWith(`${hostname()}/${pid}-`));
  if (ours.length > 0) console.log(`warning: the runner left ${ours.length} containers`);
}

const { child, url } = await startRunner();
try {
  const client = new RunnerClient({ baseUrl: url, token: TOKEN, timeoutMs: 120_000 });
  await startLatency(client);
  await idleMemory(client, child.pid!);
} finally {
  // Every step runs whatever the others did: nothing may be left behind.
  const steps: [string, () => Promise<unknown>][] = [
    ['stop the runner', () => stopRunner(child)],
    ['remove the peer containers', () => removeLabelled(PEER_LABEL)],
    ['check the runner left nothing', () => checkRunnerLeftNothing(child.pid)],
  ];
  for (const [what, step] of steps)
    await step().catch((error: unknown) => console.error(`cleanup: ${what}: ${error}`));
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(peerRunDir, { recursive: true, force: true });
}
