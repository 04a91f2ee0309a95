import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cdpAnswers, DesktopProcess, displayNumber, socketAnswers, waitFor } from './desktop-process.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function unixServer(greeting?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'grexal-desktop-'));
  const path = join(dir, 'vnc.sock');
  const server: Server = createServer((s) => {
    s.on('error', () => {});
    if (greeting) s.write(greeting);
  });
  await new Promise<void>((r) => server.listen(path, r));
  closers.push(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });
  return path;
}

describe('probes', () => {
  it('socketAnswers: accepting, greeting as VNC, or not there', async () => {
    expect(await socketAnswers(await unixServer())).toBe(true);
    expect(await socketAnswers(await unixServer('RFB 003.008\n'), /^RFB \d{3}\.\d{3}\n$/)).toBe(true);
    expect(await socketAnswers(await unixServer('HTTP/1.1 400 x\r\n'), /^RFB \d{3}\.\d{3}\n$/)).toBe(false);
    expect(await socketAnswers('/nonexistent/grexal/vnc.sock')).toBe(false);
  });

  it('cdpAnswers: only a /json/version with a browser WebSocket URL counts', async () => {
    let body = '{}';
    const server: HttpServer = createHttpServer((_req, res) => res.end(body));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => server.close(() => r())));
    const { port } = server.address() as { port: number };
    expect(await cdpAnswers(port)).toBe(false);
    body = '{"webSocketDebuggerUrl":"ws://127.0.0.1/devtools/browser/x"}';
    expect(await cdpAnswers(port)).toBe(true);
  });
});

describe('DesktopProcess and waitFor', () => {
  it('fails the wait as soon as a watched process dies, with its last stderr lines', async () => {
    const p = new DesktopProcess(
      'fake Xvfb',
      'sh',
      ['-c', 'echo "cannot open display" >&2; exit 3'],
      process.env,
    );
    const wait = waitFor('never', async () => false, { deadline: Date.now() + 60_000, watch: [p] });
    await expect(wait).rejects.toThrow(/fake Xvfb exited with 3: cannot open display/);
  });

  it('gives up at the deadline', async () => {
    await expect(
      waitFor('the impossible', async () => false, { deadline: Date.now() + 50, watch: [] }),
    ).rejects.toThrow(/timed out waiting for the impossible/);
  });

  it('returns once the probe answers', async () => {
    let calls = 0;
    await waitFor('the third try', async () => ++calls === 3, { deadline: Date.now() + 60_000, watch: [] });
    expect(calls).toBe(3);
  });

  it('reads the display number from the -displayfd pipe', async () => {
    const p = new DesktopProcess('fake Xvfb', 'sh', ['-c', 'echo 42 >&3; exec sleep 30'], process.env, 1);
    closers.push(() => p.stop());
    expect(await displayNumber(p, { deadline: Date.now() + 60_000, watch: [p] })).toBe(42);
  });

  it('stop() terminates it with SIGTERM', async () => {
    const p = new DesktopProcess('group', 'sh', ['-c', 'sleep 30 & exec sleep 30'], process.env);
    await p.stop();
    expect(p.exit?.signal).toBe('SIGTERM');
  });
});
