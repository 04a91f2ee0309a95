/**
 * An idle Chromium with the quiet switches requests nothing but loopback. Read from its own net log;
 * every name fails at Chromium's resolver (--host-resolver-rules), so even a regression sends no
 * query out of this machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { quietChromiumFlags } from './chromium-quiet.ts';

/** Chromium's own requests came within ~1 s of its start; this leaves it several times that. */
const IDLE_MS = 4_000;
let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

it('keeps an idle Chromium from requesting anything but loopback', async () => {
  dir = await mkdtemp(join(tmpdir(), 'chromium-quiet-'));
  const netLog = join(dir, 'net.json');
  const child = spawn(
    '/usr/bin/chromium',
    [
      '--headless=new',
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      `--user-data-dir=${join(dir, 'profile')}`,
      ...quietChromiumFlags(),
      '--host-resolver-rules=MAP * ~NOTFOUND',
      `--log-net-log=${netLog}`,
      'about:blank',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  // SIGTERM lets Chromium finish its net log.
  child.kill('SIGTERM');
  await exited;
  const log = await readFile(netLog, 'utf8');
  const urls = [...new Set([...log.matchAll(/"url":"([^"?]+)/g)].map((m) => m[1] ?? ''))];
  const origins = urls.map((url) => new URL(url).host);
  // The log is of this Chromium: it holds its command line, and so the test reads the right file.
  expect(log).toContain('disable-background-networking');
  expect(origins.filter((host) => !/^127\.0\.0\.1(:\d+)?$/.test(host))).toEqual([]);
}, 30_000);
