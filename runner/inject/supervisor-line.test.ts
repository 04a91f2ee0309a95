/**
 * The runner's calls to the real Python supervisor over the real CtxServer (no Docker): files
 * replaced atomically, a half-way failure leaving the old files, removal, and the supervisor taking
 * its connection back after a reconnect.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CtxServer } from './ctx-server.ts';
import { buildFilesTar } from './files.ts';

const SUPERVISOR = new URL('../../sandbox-agent/supervisor/supervisor.py', import.meta.url).pathname;
const TOKEN = 'resume-token-for-the-test';
let dir: string;
let root: string;
let server: CtxServer | undefined;
let child: ChildProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-live-'));
  root = join(dir, 'files');
  await mkdir(root, { mode: 0o700 });
});
afterEach(async () => {
  child?.kill('SIGKILL');
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const tar = (connectionId: string, files: Record<string, string | Buffer>) =>
  buildFilesTar(
    Object.entries(files).map(([name, content]) => ({ connectionId, name, content: Buffer.from(content) })),
  );

/** Starts a server and the supervisor (its agent sleeps); resolves once the agent runs. */
async function start(options: { fileSizeBlocks?: number } = {}): Promise<CtxServer> {
  let onStarted!: () => void;
  const started = new Promise<void>((resolve) => {
    onStarted = resolve;
  });
  const initial = await tar('gcp', { 'a.json': 'old-a-content', 'b.json': 'old-b-content' });
  server = await CtxServer.listen(
    join(dir, 'ctx.sock'),
    {
      bootstrap: async (_params, call) => {
        call.claimSupervisor();
        return {
          command: ['sleep', '30'],
          env: {},
          stopTimeoutMs: 300,
          runnerGraceMs: 5_000,
          filesTar: initial.toString('base64'),
          supervisorToken: TOKEN,
        };
      },
      started: async () => {
        onStarted();
        return {};
      },
      supervisor_resume: async (params, call) => {
        if ((params as { token?: unknown }).token !== TOKEN) throw new Error('bad token');
        call.claimSupervisor();
        return {};
      },
    },
    { owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } },
  );
  const limit = options.fileSizeBlocks === undefined ? '' : `ulimit -f ${options.fileSizeBlocks}; `;
  child = spawn('sh', ['-c', `${limit}exec python3 -B -I -S ${SUPERVISOR}`], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GREXAL_CTX_SOCKET: server.socketPath,
      GREXAL_FILES_ROOT: root,
    },
    stdio: 'ignore',
  });
  await Promise.race([
    started,
    once(child, 'exit').then(() => Promise.reject(new Error('supervisor exited'))),
  ]);
  return server;
}

const read = (name: string) => readFile(join(root, 'gcp', name), 'utf8');

describe('files_replace and files_remove through the supervisor', { timeout: 30_000 }, () => {
  it('replaces every file whole, with mode 0400, and leaves no temporary file', async () => {
    const ctx = await start();
    const next = await tar('gcp', { 'a.json': 'new-a-content', 'b.json': 'new-b-content' });
    await ctx.callSupervisor('files_replace', { connectionId: 'gcp', filesTar: next.toString('base64') });
    expect(await read('a.json')).toBe('new-a-content');
    expect(await read('b.json')).toBe('new-b-content');
    expect((await stat(join(root, 'gcp', 'a.json'))).mode & 0o777).toBe(0o400);
    expect((await readdir(join(root, 'gcp'))).sort()).toEqual(['a.json', 'b.json']);
  });

  it('leaves the old files intact when a write fails half-way', async () => {
    // 2 blocks of 512 bytes: the first new file fits, the second cannot be written (EFBIG).
    const ctx = await start({ fileSizeBlocks: 2 });
    const next = await tar('gcp', { 'a.json': 'new-a-content', 'b.json': Buffer.alloc(8192, 'x') });
    await expect(
      ctx.callSupervisor('files_replace', { connectionId: 'gcp', filesTar: next.toString('base64') }),
    ).rejects.toMatchObject({
      code: 'E_CREDENTIAL_DELIVERY_FAILED',
      message: /gcp\/b\.json.*old files are intact/,
    });
    expect(await read('a.json')).toBe('old-a-content');
    expect(await read('b.json')).toBe('old-b-content');
    expect((await readdir(join(root, 'gcp'))).sort()).toEqual(['a.json', 'b.json']);
  });

  it('refuses an entry of another connection before writing anything', async () => {
    const ctx = await start();
    const next = await tar('other', { 'a.json': 'new-a-content' });
    await expect(
      ctx.callSupervisor('files_replace', { connectionId: 'gcp', filesTar: next.toString('base64') }),
    ).rejects.toMatchObject({ code: 'E_CREDENTIAL_DELIVERY_FAILED' });
    expect(await read('a.json')).toBe('old-a-content');
  });

  it('does not follow a link the agent put in place of the directory', async () => {
    const ctx = await start();
    await ctx.callSupervisor('files_remove', { connectionId: 'gcp' });
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(root, 'gcp'));
    const next = await tar('gcp', { 'a.json': 'new-a-content' });
    await expect(
      ctx.callSupervisor('files_replace', { connectionId: 'gcp', filesTar: next.toString('base64') }),
    ).rejects.toMatchObject({ code: 'E_CREDENTIAL_DELIVERY_FAILED' });
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('removes the directory, and a second removal succeeds', async () => {
    const ctx = await start();
    await ctx.callSupervisor('files_remove', { connectionId: 'gcp' });
    await expect(stat(join(root, 'gcp'))).rejects.toMatchObject({ code: 'ENOENT' });
    await ctx.callSupervisor('files_remove', { connectionId: 'gcp' });
  });

  it('takes its connection back with the token after the runner drops it', async () => {
    const ctx = await start();
    (ctx as unknown as { supervisor: { socket: { destroy(): void } } }).supervisor.socket.destroy();
    for (let i = 0; i < 200 && !ctx.supervisorConnected; i++) await new Promise((r) => setTimeout(r, 25));
    expect(ctx.supervisorConnected).toBe(true);
    const next = await tar('gcp', { 'a.json': 'after-resume-a', 'b.json': 'after-resume-b' });
    await ctx.callSupervisor('files_replace', { connectionId: 'gcp', filesTar: next.toString('base64') });
    expect(await read('a.json')).toBe('after-resume-a');
  });
});
