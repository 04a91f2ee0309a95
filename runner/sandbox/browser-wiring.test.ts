import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeChromium } from '../browser/fake-chromium.ts';
import { BrowserWiring, type LocalTakeoverRequest, type SandboxBrowser } from './browser-wiring.ts';

const logger = pino({ level: 'silent' });
let dir: string;
let wiring: BrowserWiring | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'browser-wiring-'));
});
afterEach(async () => {
  await wiring?.close();
  wiring = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function wired(browser: SandboxBrowser): Promise<BrowserWiring> {
  wiring = new BrowserWiring(browser, logger);
  await wiring.start(dir);
  return wiring;
}

const request = (extra: Partial<LocalTakeoverRequest> = {}): LocalTakeoverRequest => ({
  sandboxId: 'sbx_1',
  reason: 'Log in',
  signal: new AbortController().signal,
  ...extra,
});

describe('BrowserWiring', () => {
  it('does nothing without a browser', async () => {
    wiring = new BrowserWiring(undefined, logger);
    await wiring.start(dir);
    expect(wiring.bootstrapFields()).toEqual({});
    expect(wiring.takesOverLocally).toBe(false);
    await expect(stat(join(dir, 'cdp.sock'))).rejects.toThrow();
  });

  it('listens on cdp.sock and tells the supervisor to forward 9222 to it', async () => {
    const w = await wired({ upstream: new FakeChromium() });
    expect((await stat(join(dir, 'cdp.sock'))).isSocket()).toBe(true);
    expect(w.bootstrapFields()).toEqual({ cdpRelay: { port: 9222 } });
    expect(w.takesOverLocally).toBe(false);
  });

  it('cuts the agents for the whole local takeover and resumes after, however it ends', async () => {
    let cutDuring: boolean | undefined;
    const outcomes = [undefined, Object.assign(new Error('no'), { code: 'takeover_cancelled' })];
    const w = await wired({
      upstream: new FakeChromium(),
      takeOver: async () => {
        cutDuring = w.cdpRelay?.isCut;
        const outcome = outcomes.shift();
        if (outcome) throw outcome;
      },
    });
    await w.takeOverLocally(request());
    expect(cutDuring).toBe(true);
    expect(w.cdpRelay?.isCut).toBe(false);
    await expect(w.takeOverLocally(request())).rejects.toMatchObject({ code: 'takeover_cancelled' });
    expect(w.cdpRelay?.isCut).toBe(false);
  });

  it('ends by itself once until holds in the browser, telling the prompt why', async () => {
    const browser = new FakeChromium();
    let reason: unknown;
    const w = await wired({
      upstream: browser,
      takeOver: ({ signal }) =>
        new Promise<void>((_, reject) =>
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            reject(signal.reason);
          }),
        ),
    });
    setTimeout(() => {
      browser.cookies = [{ name: 'sid', value: 'x' }];
    }, 300);
    await w.takeOverLocally(request({ until: { cookie: 'sid' } }));
    expect((reason as Error).message).toBe('signed in (until.cookie held)');
    expect(w.cdpRelay?.isCut).toBe(false);
  });

  it('expires when nobody is done in time', async () => {
    const w = await wired({ upstream: new FakeChromium(), takeOver: () => new Promise(() => {}) });
    await expect(w.takeOverLocally(request({ timeoutMs: 50 }))).rejects.toMatchObject({
      code: 'takeover_expired',
    });
    expect(w.cdpRelay?.isCut).toBe(false);
  });
});
