/** The Python supervisor (sandbox-agent/supervisor/) run as in the image, against a fake runner. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeCtxServer } from './clients/fake-ctx-server.ts';
import { startPython } from './testing/python.ts';

const SUPERVISOR = new URL('./supervisor/supervisor.py', import.meta.url).pathname;
let server: FakeCtxServer;
let root: string;

beforeAll(async () => {
  server = await FakeCtxServer.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  server.requests.length = 0;
  root = await mkdtemp(join(tmpdir(), 'grexal-files-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts the supervisor; the fake runner answers `bootstrap` with `result` (or `error`). */
function supervise(
  result: Record<string, unknown>,
  error?: { code: string; message: string },
  extraEnv: Record<string, string> = {},
): Run {
  server.handler = (request) =>
    request.method === 'bootstrap'
      ? error
        ? { error }
        : { result: { env: {}, stopTimeoutMs: 300, ...result } }
      : { result: {} };
  return startPython(['-I', '-S', SUPERVISOR, 'image-cmd'], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GREXAL_CTX_SOCKET: server.path,
      GREXAL_FILES_ROOT: root,
      ...extraEnv,
    },
  });
}

const started = () => server.requests.filter((r) => r.method === 'started').map((r) => r.params);

async function tarOf(
  entries: { name: string; type?: 'file' | 'symlink'; content?: string }[],
): Promise<string> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = once(p, 'end');
  for (const { name, type = 'file', content = 'secret-content' } of entries) {
    const header = type === 'file' ? { name, type } : { name, type, linkname: '/etc/passwd' };
    await new Promise<void>((resolve, reject) =>
      p.entry(header, type === 'file' ? content : '', (e) => (e ? reject(e) : resolve())),
    );
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks).toString('base64');
}

// Each test starts python3: generous limits, never asserted on.
describe('the Python supervisor', { timeout: 30_000 }, () => {
  it('sends its argv, mirrors the exit code and reports the pid', async () => {
    const { code } = await supervise({ command: ['sh', '-c', 'exit 3'] }).exit;
    expect(code).toBe(3);
    expect(server.requests[0]).toEqual({ id: 1, method: 'bootstrap', params: { argv: ['image-cmd'] } });
    expect(started()).toEqual([{ pid: expect.any(Number) }]);
  });

  it('gives the injected env to the agent only, with the container env and a cwd', async () => {
    const script =
      'test "$CANARY" = sung && test "$PWD" = /tmp && test -n "$PATH" || exit 1; tr "\\0" "\\n" < /proc/$PPID/environ | grep -c CANARY; exit 7';
    const run = await supervise({ command: ['sh', '-c', script], env: { CANARY: 'sung' }, cwd: '/tmp' }).exit;
    expect(run.code).toBe(7);
    expect(run.stdout).toBe('0\n');
    expect(run.stderr).not.toContain('sung');
  });

  it('puts the agent first for the OOM killer, and not itself', async () => {
    // The supervisor lowers its own score back right after the spawn, which the agent can outrun:
    // it reads its parent's until that is done, in a bounded loop.
    const lowered =
      'i=0; while [ "$(cat /proc/$PPID/oom_score_adj)" = 1000 ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done';
    const run = await supervise({
      command: ['sh', '-c', `cat /proc/self/oom_score_adj; ${lowered}; cat /proc/$PPID/oom_score_adj`],
    }).exit;
    expect(run.code).toBe(0);
    // The supervisor keeps what it was started with (here this test's own).
    const own = readFileSync('/proc/self/oom_score_adj', 'utf8').trim();
    expect(run.stdout).toBe(`1000\n${own}\n`);
  });

  it('exits 127 naming a missing command', async () => {
    const run = await supervise({ command: ['no-such-command-xyz'] }).exit;
    expect(run.code).toBe(127);
    expect(run.stderr).toBe('grexal: command not found: no-such-command-xyz\n');
    expect(started()).toEqual([{ error: 'command not found: no-such-command-xyz' }]);
  });

  it('exits 126 for a command it may not run', async () => {
    const script = join(root, 'agent.sh');
    await writeFile(script, 'exit 0\n', { mode: 0o644 });
    const run = await supervise({ command: [script] }).exit;
    expect(run.code).toBe(126);
    expect(run.stderr).toBe(`grexal: permission denied: ${script}\n`);
  });

  it('runs an executable without a #! line with sh, as execvp does', async () => {
    const script = join(root, 'agent.sh');
    await writeFile(script, 'exit 5\n', { mode: 0o755 });
    expect((await supervise({ command: [script] }).exit).code).toBe(5);
  });

  it('reports a signal death as 128+n', async () => {
    expect((await supervise({ command: ['sh', '-c', 'kill -KILL $$'] }).exit).code).toBe(137);
  });

  it('terminates, then kills, an agent that ignores SIGTERM', async () => {
    const run = supervise({
      command: ['sh', '-c', "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
    });
    // The shell has installed its trap once it prints.
    await new Promise<void>((resolve) => run.child.stdout?.on('data', () => resolve()));
    run.child.kill('SIGTERM');
    expect((await run.exit).code).toBe(137);
  });

  it('passes SIGTERM to an agent that stops on it', async () => {
    const run = supervise({
      command: ['sh', '-c', "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"],
    });
    await new Promise<void>((resolve) => run.child.stdout?.on('data', () => resolve()));
    run.child.kill('SIGTERM');
    expect((await run.exit).code).toBe(42);
  });

  it('exits 125 naming the runner error when the bootstrap fails', async () => {
    const run = await supervise({}, { code: 'invalid_request', message: 'already bootstrapped' }).exit;
    expect(run.code).toBe(125);
    expect(run.stderr).toBe(
      `grexal: cannot bootstrap from the runner at ${server.path}: invalid_request: already bootstrapped\n`,
    );
  });

  it('exits 125 when ctx.sock is not there', async () => {
    server.handler = () => ({ result: {} });
    const child = spawn('python3', ['-B', '-I', '-S', SUPERVISOR], {
      env: { GREXAL_CTX_SOCKET: join(root, 'none.sock') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const [code] = await once(child, 'exit');
    expect(code).toBe(125);
    expect(stderr).toContain('cannot bootstrap from the runner at');
  });

  it('writes the files 0400 under a 0700 directory before the agent starts', async () => {
    const filesTar = await tarOf([{ name: 'gcp/key.json', content: '{"k":1}' }, { name: 'aws/credentials' }]);
    const script = `cat ${root}/gcp/key.json`;
    const run = await supervise({ command: ['sh', '-c', script], filesTar }).exit;
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('{"k":1}');
    expect((await stat(join(root, 'gcp/key.json'))).mode & 0o777).toBe(0o400);
    expect((await stat(join(root, 'gcp'))).mode & 0o777).toBe(0o700);
    expect((await readdir(root)).sort()).toEqual(['aws', 'gcp']);
  });

  it('refuses a bad entry, removes what it wrote and never starts the agent', async () => {
    const filesTar = await tarOf([{ name: 'gcp/a.json' }, { name: 'aws/../x' }]);
    const run = await supervise({ command: ['sh', '-c', 'echo ran'], filesTar }).exit;
    expect(run.code).toBe(125);
    expect(run.stderr).toContain('Refusing file-channel entry "aws/../x"');
    expect(run.stdout).toBe('');
    expect(await readdir(root)).toEqual([]);
    expect(started()).toEqual([]);
  });

  it('starts no desktop in the agent container, even when a bootstrap asks for one', async () => {
    // The display and the browser run in the browser container (docs/browser.md); a `desktop`
    // field from an older runner must not start them next to the agent.
    const run = await supervise({
      command: ['sh', '-c', 'echo "display=$DISPLAY"'],
      desktop: { width: 1024, height: 768 },
    }).exit;
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('display=\n');
  });
});
