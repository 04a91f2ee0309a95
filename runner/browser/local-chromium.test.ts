import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalChromium, localBrowserProblem } from './local-chromium.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let savedTmp: string | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-chromium-'));
  savedTmp = process.env['TMPDIR'];
  // The profile directories go here, so that the test sees what is left.
  process.env['TMPDIR'] = dir;
});
afterEach(async () => {
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

const profiles = async () => (await readdir(dir)).filter((name) => name.startsWith('grexal-chromium-'));

describe('localBrowserProblem', () => {
  it('names a missing chromium and the fix', () => {
    const problem = localBrowserProblem({ executablePath: join(dir, 'no-chromium'), display: ':0' });
    expect(problem?.code).toBe('E_BROWSER_NOT_FOUND');
    expect(problem?.message).toMatch(/Install chromium.*--browser desktop/);
  });

  it('names a missing display and the fix, unless headless', async () => {
    const chromium = await script('chromium', 'exit 0');
    const saved = process.env['DISPLAY'];
    delete process.env['DISPLAY'];
    try {
      const problem = localBrowserProblem({ executablePath: chromium });
      expect(problem?.code).toBe('E_BROWSER_NO_DISPLAY');
      expect(problem?.message).toMatch(/DISPLAY.*--browser desktop/);
      expect(localBrowserProblem({ executablePath: chromium, headless: true })).toBeUndefined();
      expect(localBrowserProblem({ executablePath: chromium, display: ':5' })).toBeUndefined();
    } finally {
      if (saved !== undefined) process.env['DISPLAY'] = saved;
    }
  });
});

describe('LocalChromium.launch', () => {
  it('reports a browser that exits while starting, and leaves no profile', async () => {
    const chromium = await script('chromium', 'echo "no GPU here" >&2; exit 3');
    await expect(
      LocalChromium.launch({ logger, executablePath: chromium, headless: true }),
    ).rejects.toMatchObject({
      code: 'E_BROWSER_START_FAILED',
      message: expect.stringMatching(/exited while starting \(code 3\).*no GPU here/),
    });
    expect(await profiles()).toEqual([]);
  });

  it('gives up on a browser that never answers over the pipe, ending it and its profile', async () => {
    const chromium = await script('chromium', `echo $$ > ${join(dir, 'pid')}; exec sleep 30`);
    await expect(
      LocalChromium.launch({ logger, executablePath: chromium, headless: true, timeoutMs: 300 }),
    ).rejects.toMatchObject({
      code: 'E_BROWSER_START_FAILED',
      message: expect.stringMatching(/did not answer within 300 ms/),
    });
    expect(await profiles()).toEqual([]);
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it("removes the profile a killed runner left, and keeps a live runner's", async () => {
    const dead = join(dir, 'grexal-chromium-dead');
    const live = join(dir, 'grexal-chromium-live');
    await mkdir(dead);
    await mkdir(live);
    // A pid far above pid_max names no process.
    await writeFile(join(dead, 'owner.pid'), '99999999\n');
    await writeFile(join(live, 'owner.pid'), `${process.pid}\n`);
    const chromium = await script('chromium', 'exit 3');
    await expect(
      LocalChromium.launch({ logger, executablePath: chromium, headless: true }),
    ).rejects.toThrow();
    expect(await profiles()).toEqual(['grexal-chromium-live']);
  });
});

describe('LocalChromium.closing', () => {
  it('holds once the pipe open() gave is closed (Chromium then ends), not when Chromium dies by itself', async () => {
    const closedByPipe = await LocalChromium.launch({ logger, headless: true });
    try {
      const pipe = await closedByPipe.open();
      expect(closedByPipe.closing).toBe(false);
      pipe.close();
      await closedByPipe.exited;
      expect(closedByPipe.closing).toBe(true);
    } finally {
      await closedByPipe.close();
    }
    const died = await LocalChromium.launch({ logger, headless: true });
    try {
      await died.open();
      process.kill(died.pid!, 'SIGKILL');
      await died.exited;
      expect(died.closing).toBe(false);
    } finally {
      await died.close();
    }
  }, 30_000);
});
