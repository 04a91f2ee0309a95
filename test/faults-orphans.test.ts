/**
 * Faults around the runner and the sandbox's own channels, on the real engine, against
 * `grexal serve` processes this file starts (and alone kills): a SIGKILLed runner's sandboxes end
 * by themselves and are reaped by the next runner; an agent ignoring SIGTERM is killed; filling
 * /run/grexal and the tmpfs mounts costs the host nothing; an agent abusing ctx.sock cannot take
 * the runner down. The SIGKILL test runs on a dockerd of its own: any runner that starts on a
 * shared engine reaps a dead runner's containers (by label), which would race the test's checks.
 */
import type { StatsFs } from 'node:fs';
import { readdir, realpath, statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerClient, type StreamEvent } from '../runner/index.ts';
import { runDirMountsUnder } from '../runner/sandbox/run-dir-mount.ts';
import { type CliRun, eventually, newStateDir, removeStateDir, sandboxDirs, startCli } from './helpers.ts';
import { type PrivateEngine, startPrivateEngine } from './private-engine.ts';

const TOKEN = 'faults-orphans-token-3b9e1d';
const IMAGE = 'grexal/agent';
const MiB = 1024 * 1024;
/** statfs(2)'s f_type of a tmpfs. */
const TMPFS_MAGIC = 0x01021994;
/** Sleeps in short steps, so the shell is there to run its trap. */
const IGNORES_TERM = "trap '' TERM; echo ready; while :; do sleep 0.1; done";

interface Serve {
  cli: CliRun;
  client: RunnerClient;
  pid: number;
}

async function startServe(stateDir: string, env: Record<string, string> = {}): Promise<Serve> {
  const cli = startCli(['serve', '--port', '0'], {
    GREXAL_STATE_DIR: stateDir,
    GREXAL_RUNNER_TOKEN: TOKEN,
    GREXAL_LOG_LEVEL: 'warn',
    ...env,
  });
  const [, url] = await cli.waitFor(/serving on (http:\/\/\S+)/, 'stderr');
  return {
    cli,
    client: new RunnerClient({ baseUrl: url as string, token: TOKEN }),
    pid: cli.child.pid as number,
  };
}

async function stopServe(serve: Serve | undefined): Promise<void> {
  if (!serve || serve.cli.child.exitCode !== null || serve.cli.child.signalCode !== null) return;
  serve.cli.child.kill('SIGTERM');
  await serve.cli.exited;
}

/** Resolves with the first log line matching `pattern`; the stream is left once it has. */
async function logMatching(client: RunnerClient, id: string, pattern: RegExp): Promise<string> {
  let text = '';
  for await (const event of client.events(id)) {
    if (event.type === 'log') text += event.text;
    const hit = text.match(pattern);
    if (hit) return hit[0];
    if (event.type === 'exit') break;
  }
  throw new Error(`${id} ended without printing ${pattern}:\n${text}`);
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

/** Containers that a runner process (by pid) left on `docker`. */
async function containersOfPid(docker: Dockerode, pid: number): Promise<Dockerode.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true, filters: { label: ['grexal.sandbox'] } });
  return all.filter((c) => c.Labels['grexal.runner']?.startsWith(`${hostname()}/${pid}-`));
}
const runnerFds = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length;

describe('a SIGKILLed runner', { timeout: 120_000 }, () => {
  let stateDir: string;
  let engine: PrivateEngine;
  let first: Serve | undefined;
  let second: Serve | undefined;

  beforeAll(async () => {
    engine = await startPrivateEngine();
    stateDir = await newStateDir();
  }, 300_000);
  afterAll(async () => {
    first?.cli.child.kill('SIGKILL');
    await stopServe(second);
    await engine?.dispose();
    await removeStateDir(stateDir);
  });

  it('leaves sandboxes that end by themselves, and the next runner reaps them', async () => {
    const env = { DOCKER_HOST: engine.endpoint };
    const { docker } = engine;
    const inspect = (containerId: string) => docker.getContainer(containerId).inspect();
    first = await startServe(stateDir, env);
    const { client, pid } = first;
    // Ignores SIGTERM, so it only goes once the supervisor's SIGKILL comes after the grace.
    const timed = await client.create({
      image: IMAGE,
      command: ['sh', '-c', IGNORES_TERM],
      limits: { timeoutMs: 4_000 },
      stopTimeoutMs: 1_000,
    });
    const untimed = await client.create({ image: IMAGE, command: ['sleep', '600'], stopTimeoutMs: 1_000 });
    await logMatching(client, timed.id, /ready/);
    await eventually(async () => (await client.get(untimed.id)).state === 'running', 'untimed running');
    const containers = await containersOfPid(docker, pid);
    expect(containers).toHaveLength(2);
    const byId = (sandboxId: string) =>
      containers.find((c) => c.Labels['grexal.sandbox'] === sandboxId)?.Id as string;
    const real = await realpath(stateDir);
    expect(await runDirMountsUnder(real)).toHaveLength(2);

    first.cli.child.kill('SIGKILL');
    await first.cli.exited;

    // The timed one goes at its deadline, while the other still waits out the runner's grace (10 s).
    await eventually(async () => !(await inspect(byId(timed.id))).State.Running, 'the timed one ends', 600);
    expect((await inspect(byId(untimed.id))).State.Running).toBe(true);
    expect((await inspect(byId(timed.id))).State.ExitCode).toBe(137);
    await eventually(
      async () => !(await inspect(byId(untimed.id))).State.Running,
      'the untimed one ends after the grace',
      600,
    );
    expect((await inspect(byId(untimed.id))).State.ExitCode).toBe(143);
    // Stopped, not removed: nobody was there to remove them; their directories and mounts stay too.
    expect(await containersOfPid(docker, pid)).toHaveLength(2);
    expect(await runDirMountsUnder(real)).toHaveLength(2);

    second = await startServe(stateDir, env);
    await eventually(async () => (await containersOfPid(docker, pid)).length === 0, 'containers reaped');
    await eventually(async () => (await sandboxDirs(stateDir)).length === 0, 'host directories reaped');
    expect(await runDirMountsUnder(real)).toEqual([]);
  });
});

describe('a live runner', { timeout: 120_000 }, () => {
  let stateDir: string;
  let serve: Serve;

  beforeAll(async () => {
    stateDir = await newStateDir();
    serve = await startServe(stateDir);
  });
  afterAll(async () => {
    await stopServe(serve);
    await removeStateDir(stateDir);
  });

  it('kills an agent that ignores SIGTERM after its grace, on DELETE and on timeout', async () => {
    const { client } = serve;
    const deleted = await client.create({
      image: IMAGE,
      command: ['sh', '-c', IGNORES_TERM],
      stopTimeoutMs: 500,
    });
    const timed = await client.create({
      image: IMAGE,
      command: ['sh', '-c', IGNORES_TERM],
      stopTimeoutMs: 500,
      limits: { timeoutMs: 3_000 },
    });
    await logMatching(client, deleted.id, /ready/);
    await client.delete(deleted.id);
    expect(await client.get(deleted.id)).toMatchObject({ exitCode: 137, exitReason: 'destroyed' });
    const events = await collect(client.events(timed.id));
    expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 137, reason: 'timeout' });
    expect(await client.get(timed.id)).toMatchObject({ exitCode: 137, exitReason: 'timeout' });
  });

  it('keeps the host disk out of /run/grexal and survives full tmpfs mounts', async () => {
    const { client } = serve;
    const fill = (path: string) =>
      `dd if=/dev/zero of=${path} bs=1M count=200 2>/dev/null; echo "${path}=$?"; rm -f ${path}`;
    const agent = [
      'dd if=/dev/zero of=/run/grexal/fill bs=1M count=200 2>&1 | grep -o "No space left on device"',
      'echo "size=$(stat -c %s /run/grexal/fill)"',
      'echo filled',
      'sleep 3',
      fill('/tmp/fill'),
      fill('/home/agent/fill'),
      'exit 0',
    ].join('; ');
    const before = await statfs(stateDir);
    const { id } = await client.create({ image: IMAGE, command: ['sh', '-c', agent] });
    const events = client.events(id);
    let output = '';
    let measured: StatsFs | undefined;
    let hostDirType: number | undefined;
    const all: StreamEvent[] = [];
    for await (const event of events) {
      all.push(event);
      if (event.type === 'log') output += event.text;
      // Measured while the 200 MiB attempt is still there to count (the agent waits for it).
      if (!measured && output.includes('filled')) {
        measured = await statfs(stateDir);
        const [hostDir] = await sandboxDirs(stateDir);
        hostDirType = (await statfs(hostDir as string)).type;
      }
    }
    expect(output).toContain('No space left on device');
    expect(Number(output.match(/size=(\d+)/)?.[1])).toBeLessThanOrEqual(MiB);
    expect(hostDirType).toBe(TMPFS_MAGIC);
    const dropped = (before.bavail - (measured?.bavail ?? 0)) * before.bsize;
    // Other work shares this disk; 200 MiB landing on it would be far over this.
    expect(dropped).toBeLessThan(100 * MiB);
    // The tmpfs mounts fill up (dd fails), and the run still ends normally.
    expect(output).toContain('/tmp/fill=1');
    expect(output).toContain('/home/agent/fill=1');
    expect(all.at(-1)).toMatchObject({ type: 'exit', exitCode: 0, reason: 'exited' });
    expect(await sandboxDirs(stateDir)).toEqual([]);
    expect(await runDirMountsUnder(await realpath(stateDir))).toEqual([]);
  });

  it('answers the next ctx.connect and the API after an agent abused ctx.sock', async () => {
    const { client, pid } = serve;
    const manifest = {
      connections: [{ id: 'svc', mode: 'secret_input' as const, fields: [{ key: 'api_key' }] }],
    };
    const abuse = `
import json, socket, sys, time
from grexal import ctx
P = '/run/grexal/ctx.sock'
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(P)
    return s
s = conn()
s.settimeout(20)
try:
    s.sendall(b'x' * (4 << 20))
except OSError:
    pass
try:
    print('oversized:', 'closed' if s.recv(16) == b'' else 'answered', flush=True)
except OSError:
    print('oversized: closed', flush=True)
s.close()
line = (json.dumps({'id': 1, 'method': 'connect', 'params': {'connectionId': 'svc'}}) + '\\n').encode()
s = conn()
s.settimeout(3)
try:
    s.sendall(line * 50000)
except OSError:
    pass
s.close()
print('flooded', flush=True)
held = []
for i in range(300):
    try:
        held.append(conn())
    except OSError:
        break
print('held', len(held), flush=True)
time.sleep(3)
fields = ctx.connect('svc')['fields']
print('connect:', sorted(fields), flush=True)
`;
    const { id } = await client.create({
      image: IMAGE,
      command: ['python3', '-c', abuse],
      manifest,
      credentials: { svc: { fields: { api_key: 'sk-faults-abuse-2f8c1a7d' } } },
    });
    const fdsBefore = await runnerFds(pid);
    await logMatching(client, id, /held \d+/);
    // The agent holds its 300 connections now; the runner keeps at most its cap of them.
    expect(await runnerFds(pid)).toBeLessThan(fdsBefore + 60);
    const events = await collect(client.events(id));
    const output = events.flatMap((e) => (e.type === 'log' ? [e.text] : [])).join('');
    expect(output).toContain('oversized: closed');
    expect(output).toContain("connect: ['api_key']");
    expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0, reason: 'exited' });
    expect(serve.cli.child.exitCode).toBeNull();
    expect((await client.get(id)).state).toBe('exited');
  });
});
