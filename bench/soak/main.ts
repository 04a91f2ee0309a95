/**
 * bench/soak (not in CI): many sandboxes through `grexal serve` over a long run, at most
 * --concurrency at once, a seeded mix of normal exits, crashes, OOMs, timeouts and DELETEs. At the
 * end it reports what must be back where it started: containers and host directories (and their
 * tmpfs mounts) of the runner, the runner's fds and RSS against the start, and every event stream
 * that did not end with `exit` or ended with another reason than its kind's. A leak check, not a
 * comparison: there is no peer to measure against. "Start" is after one warm-up sandbox (the cold
 * figures are printed too). Exits 1 on a leak.
 *
 *   node scripts/run-ts.mjs bench/soak/main.ts [--count 500] [--duration 600] [--concurrency 20]
 *                                              [--seed 1]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import { isRunnerApiError, RunnerClient } from '../../runner/client/index.ts';
import { IDS_DIR } from '../../runner/runtime/index.ts';
import { runDirMountsUnder } from '../../runner/sandbox/run-dir-mount.ts';
import { type ServeChild, startServe } from '../lib/serve-child.ts';
import { KINDS, type Kind, type Plan, plan, random } from './kinds.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '500' },
    duration: { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
  },
});
const COUNT = Number(values.count);
const DURATION_MS = Number(values.duration) * 1000;
const CONCURRENCY = Number(values.concurrency);
const TOKEN = randomBytes(16).toString('hex');
const MiB = 1024 * 1024;
const rand = random(Number(values.seed));
const docker = new Dockerode({
  socketPath: process.env['DOCKER_HOST']?.replace('unix://', '') ?? '/var/run/docker.sock',
});
const stateDir = mkdtempSync(join(tmpdir(), 'bench-soak-state-'));

function startRunner(): Promise<ServeChild> {
  return startServe(['--max-sandboxes', String(CONCURRENCY + 10)], { stateDir, token: TOKEN });
}

const rss = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
/** What the runner's fds are, by kind (`socket`, `anon_inode:[eventpoll]`, a path). */
function fdKinds(pid: number): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '?';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, '');
    } catch {}
    kinds.set(target, (kinds.get(target) ?? 0) + 1);
  }
  return kinds;
}
/**
 * The runner's sockets on fds it did not have at the start, each with its peer's process, so that
 * a leak tells itself from a keep-alive connection (to dockerd, or from this bench's own client).
 */
function newSockets(pid: number, before: Set<string>): string[] {
  const fresh = readdirSync(`/proc/${pid}/fd`).filter((fd) => !before.has(fd));
  const lines = (spawnSync('ss', ['-anpx', '-t'], { encoding: 'utf8' }).stdout ?? '').split('\n');
  const cells = (line: string) => line.trim().split(/\s+/);
  const owner = (line: string | undefined) =>
    /users:\(\("([^"]+)",pid=(\d+)/
      .exec(line ?? '')
      ?.slice(1)
      .join(' ') ?? '?';
  return lines
    .filter((line) => fresh.some((fd) => line.includes(`pid=${pid},fd=${fd})`)))
    .map((line) => {
      const c = cells(line);
      const unix = c[0] === 'u_str';
      // ss: `u_str STATE rq sq * INODE * PEER_INODE users` and `tcp STATE rq sq LOCAL PEER users`.
      const [local, peer] = unix ? [c[5], c[7]] : [c[4], c[5]];
      const peerLine = lines.find((l) => {
        const p = cells(l);
        return unix ? p[0] === 'u_str' && p[5] === peer : p[4] === peer && p[5] === local;
      });
      return `${c[0]} ${local} -> ${peer} (peer: ${owner(peerLine)})`;
    });
}
const kindsDiff = (a: Map<string, number>, b: Map<string, number>) =>
  [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => (a.get(k) ?? 0) !== (b.get(k) ?? 0))
    .map((k) => `${k} ${a.get(k) ?? 0}->${b.get(k) ?? 0}`)
    .join(', ');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  kind: Kind;
  id?: string;
  last?: string;
  reason?: string;
  expected: string;
  error?: string;
}

async function createRetrying(client: RunnerClient, p: Plan): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await client.create(p.body)).id;
    } catch (error) {
      // A slot frees only once the runner has removed the container: the cap may lag our count.
      if (!isRunnerApiError(error) || error.status !== 429 || attempt >= 50) throw error;
      await sleep(200);
    }
  }
}

async function runOne(client: RunnerClient, p: Plan): Promise<Outcome> {
  const outcome: Outcome = { kind: p.kind, expected: p.expected };
  try {
    const id = await createRetrying(client, p);
    outcome.id = id;
    for await (const event of client.events(id)) {
      outcome.last = event.type;
      if (event.type === 'state' && event.state === 'running' && p.deleteAfterMs !== undefined) {
        const after = p.deleteAfterMs;
        void sleep(after).then(() => client.delete(id).catch(() => {}));
      }
      if (event.type === 'exit') outcome.reason = `${event.reason} (${event.exitCode})`;
      if (event.type === 'error') outcome.error = `${event.code}: ${event.message}`;
    }
  } catch (error) {
    outcome.error = String(error);
  }
  return outcome;
}

/** Starts sandbox i at i × duration / count (or once a slot is free), at most CONCURRENCY at once. */
async function soak(client: RunnerClient): Promise<Outcome[]> {
  const started = Date.now();
  const outcomes: Promise<Outcome>[] = [];
  const live = new Set<Promise<Outcome>>();
  for (let i = 0; i < COUNT; i++) {
    const due = started + (i * DURATION_MS) / COUNT;
    if (due > Date.now()) await sleep(due - Date.now());
    while (live.size >= CONCURRENCY) await Promise.race(live);
    const kind = KINDS[Math.floor(rand() * KINDS.length)] as Kind;
    const task = runOne(client, plan(kind, rand));
    live.add(task);
    void task.finally(() => live.delete(task));
    outcomes.push(task);
    if ((i + 1) % 50 === 0)
      console.log(`  ${i + 1}/${COUNT} started after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return Promise.all(outcomes);
}

async function leftovers(pid: number) {
  const containers = (
    await docker.listContainers({ all: true, filters: { label: ['grexal.sandbox'] } })
  ).filter((c) => c.Labels['grexal.runner']?.startsWith(`${hostname()}/${pid}-`));
  // `.ids` holds the runner's id key and instance records (runner/runtime/instance-ids.ts).
  const dirs = readdirSync(stateDir)
    .filter((instance) => instance !== IDS_DIR)
    .flatMap((instance) => readdirSync(join(stateDir, instance)).map((sandbox) => join(instance, sandbox)));
  const mounts = await runDirMountsUnder(realpathSync(stateDir));
  return { containers: containers.length, dirs: dirs.length, mounts: mounts.length };
}

async function main(): Promise<void> {
  const { child, url } = await startRunner();
  const pid = child.pid as number;
  const client = new RunnerClient({ baseUrl: url, token: TOKEN });
  try {
    await sleep(1_000);
    const cold = { rss: rss(pid), fds: fds(pid) };
    // One sandbox first: what the runner starts once and keeps (the network's conntrack helper and
    // its three pipes, the engine's connections) is not a leak of the soak's.
    const warmUp = await runOne(client, plan('ok', rand));
    if (warmUp.last !== 'exit')
      throw new Error(`the warm-up sandbox did not end: ${warmUp.error ?? warmUp.last}`);
    await sleep(1_000);
    const start = {
      rss: rss(pid),
      fds: fds(pid),
      kinds: fdKinds(pid),
      fdSet: new Set(readdirSync(`/proc/${pid}/fd`)),
    };
    console.log(
      `bench/soak: ${COUNT} sandboxes over ${DURATION_MS / 1000} s, at most ${CONCURRENCY} at once (seed ${values.seed})`,
    );
    const began = Date.now();
    const outcomes = await soak(client);
    const tookS = (Date.now() - began) / 1000;
    // Removal trails the exit event a little, and the HTTP client closes idle keep-alive sockets after 4 s.
    await sleep(6_000);
    const end = { rss: rss(pid), fds: fds(pid), kinds: fdKinds(pid) };
    const left = await leftovers(pid);
    const unended = outcomes.filter((o) => o.last !== 'exit');
    const wrong = outcomes.filter((o) => o.last === 'exit' && !o.reason?.startsWith(`${o.expected} `));
    const byKind = KINDS.map((k) => `${k} ${outcomes.filter((o) => o.kind === k).length}`).join(', ');
    console.log(`ran ${outcomes.length} in ${tookS.toFixed(0)} s: ${byKind}`);
    console.log(
      `containers left ${left.containers}, host directories left ${left.dirs}, mounts left ${left.mounts}`,
    );
    console.log(
      `runner fds ${start.fds} -> ${end.fds} (${kindsDiff(start.kinds, end.kinds) || 'same kinds'})`,
    );
    console.log(
      `cold start (before the warm-up sandbox): fds ${cold.fds}, RSS ${(cold.rss / MiB).toFixed(1)} MiB`,
    );
    console.log(
      `runner RSS ${(start.rss / MiB).toFixed(1)} MiB -> ${(end.rss / MiB).toFixed(1)} MiB (${((end.rss - start.rss) / MiB).toFixed(1)} MiB)`,
    );
    if (end.fds > start.fds) for (const line of newSockets(pid, start.fdSet)) console.log(`  new: ${line}`);
    console.log(`event streams not ending with exit: ${unended.length}`);
    for (const o of unended.slice(0, 10))
      console.log(`  ${o.kind} ${o.id ?? '(not created)'}: last ${o.last} ${o.error ?? ''}`);
    console.log(`exits with another reason than expected: ${wrong.length}`);
    for (const o of wrong.slice(0, 10))
      console.log(
        `  ${o.kind} ${o.id}: ${o.reason}, expected ${o.expected}${o.error ? `; ${o.error.slice(0, 200)}` : ''}`,
      );
    const leaked =
      left.containers + left.dirs + left.mounts + unended.length + Math.max(0, end.fds - start.fds);
    process.exitCode = leaked > 0 ? 1 : 0;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
