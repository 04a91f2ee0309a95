/**
 * The supervisor ends the agent by itself: at the deadline the bootstrap gives, and once the
 * runner's side of ctx.sock is gone for longer than the grace (sandbox-agent/supervisor/watch.py).
 */
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeAnswer, FakeCtxServer } from './clients/fake-ctx-server.ts';
import { startPython } from './testing/python.ts';

const SUPERVISOR = new URL('./supervisor/supervisor.py', import.meta.url).pathname;
let server: FakeCtxServer;
let root: string;

beforeEach(async () => {
  server = await FakeCtxServer.start();
  root = await mkdtemp(join(tmpdir(), 'grexal-watch-'));
});
afterEach(async () => {
  await server.close().catch(() => {});
  await rm(root, { recursive: true, force: true });
});

function supervise(result: Record<string, unknown>) {
  server.handler = (request) =>
    request.method === 'bootstrap' ? { result: { env: {}, stopTimeoutMs: 300, ...result } } : { result: {} };
  return startPython(['-I', '-S', SUPERVISOR], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', GREXAL_CTX_SOCKET: server.path },
  });
}

/** An agent that runs until told to stop (a file appears), exits 42 on SIGTERM unless `ignore`. */
function agent(stopFile: string, onTerm: 'exit 42' | 'ignore' = 'exit 42'): string[] {
  const trap = onTerm === 'ignore' ? "trap '' TERM" : "trap 'exit 42' TERM";
  return ['sh', '-c', `${trap}; while [ ! -e ${stopFile} ]; do sleep 0.05; done; exit 7`];
}

const waitUntil = async (check: () => boolean | Promise<boolean>, what: string) => {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never happened: ${what}`);
};
const startedCalls = () => server.requests.filter((r) => r.method === 'started').length;

describe('the supervisor on its own', { timeout: 30_000 }, () => {
  it('stops the agent with SIGTERM at the deadline of the bootstrap', async () => {
    const run = supervise({ command: agent(join(root, 'stop')), deadlineMs: 300 });
    expect((await run.exit).code).toBe(42);
  });

  it('kills an agent that ignores SIGTERM once the stop grace is over', async () => {
    const run = supervise({ command: agent(join(root, 'stop'), 'ignore'), deadlineMs: 200 });
    expect((await run.exit).code).toBe(137);
  });

  it('stops the agent once the runner is gone for longer than the grace', async () => {
    const run = supervise({ command: agent(join(root, 'stop')), runnerGraceMs: 500 });
    await waitUntil(() => startedCalls() === 1, 'started');
    await server.close(); // The runner dies: its connections close, nothing listens any more.
    const exit = await run.exit;
    expect(exit.code).toBe(42);
    expect(exit.stderr).toContain('grexal: the runner is gone');
  });

  it('keeps the agent while the runner takes its connection back', async () => {
    const stop = join(root, 'stop');
    const run = supervise({ command: agent(stop), runnerGraceMs: 1_000 });
    await waitUntil(() => startedCalls() === 1, 'started');
    await waitUntil(() => server.sockets.size === 1, 'the supervisor holds its connection');
    server.dropConnections();
    await waitUntil(() => server.connections === 2 && server.sockets.size === 1, 'a reconnect');
    // Well past the grace: had the reconnect not counted, the agent would be stopped by now (42).
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await writeFile(stop, '');
    expect((await run.exit).code).toBe(7);
  });

  it('closes its connection after started, as before, when the runner sends neither field', async () => {
    const stop = join(root, 'stop');
    const run = supervise({ command: agent(stop) });
    await waitUntil(() => startedCalls() === 1, 'started');
    await waitUntil(() => server.sockets.size === 0, 'the connection closed');
    await writeFile(stop, '');
    expect((await run.exit).code).toBe(7);
    await expect(access(stop)).resolves.toBeUndefined();
  });
});

describe("the supervisor waits for its exit's turn", { timeout: 30_000 }, () => {
  const exitedCalls = () => server.requests.filter((r) => r.method === 'exited');

  function superviseExit(exited: (request: { id: unknown }) => FakeAnswer, result: Record<string, unknown>) {
    const run = supervise(result);
    const bootstrap = server.handler;
    server.handler = (request) => (request.method === 'exited' ? exited(request) : bootstrap(request));
    return run;
  }

  it("holds the ended agent's exit code until the runner answers exited", async () => {
    const run = superviseExit(() => 'never', { command: ['sh', '-c', 'exit 3'], runnerGraceMs: 5_000 });
    let ended = false;
    void run.exit.then(() => {
      ended = true;
    });
    await waitUntil(() => exitedCalls().length === 1, 'exited asked');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ended).toBe(false);
    const [socket] = server.sockets;
    socket?.write(`${JSON.stringify({ id: exitedCalls()[0]?.id, result: {} })}\n`);
    expect((await run.exit).code).toBe(3);
  });

  it('goes at once for a runner that does not know exited, and on a stop while it waits', async () => {
    const older = superviseExit(() => ({ error: { code: 'unknown_method', message: 'no' } }), {
      command: ['sh', '-c', 'exit 4'],
      runnerGraceMs: 5_000,
    });
    expect((await older.exit).code).toBe(4);

    const stopped = superviseExit(() => 'never', { command: ['sh', '-c', 'exit 6'], runnerGraceMs: 5_000 });
    await waitUntil(() => exitedCalls().length === 2, 'exited asked');
    stopped.child.kill('SIGTERM');
    expect((await stopped.exit).code).toBe(6);
  });

  it('does not ask a runner that keeps no line to the supervisor', async () => {
    const run = supervise({ command: ['sh', '-c', 'exit 2'] });
    expect((await run.exit).code).toBe(2);
    expect(exitedCalls()).toEqual([]);
  });
});
