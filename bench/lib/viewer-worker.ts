/**
 * The bench's "user" (its Chromium, driven by Playwright) on a worker thread of its own, so that
 * the browser's driving does not wait on the event loop of the runner under test (bench/takeover
 * runs both in one process; a user's browser shares nothing with the runner). Each visit opens a
 * new tab with the viewer probe (viewer-probe.ts, the same script), loads the link, waits for the
 * first frame drawn and closes the tab; the stamps are epoch ms, the same clock as the runner's.
 * The worker's code is plain JavaScript run with `eval` (run-ts bundles the bench into one file).
 */
import { Worker } from 'node:worker_threads';
import type { ViewerStamps } from './viewer-probe.ts';
import { PROBE_SCRIPT } from './viewer-probe.ts';

export interface Visit {
  /** Tab opened (newPage and the probe added) and `load`, epoch ms. */
  opened: number;
  loaded: number;
  stamps: ViewerStamps;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { chromium } = require('playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: workerData.flags });
  const context = await browser.newContext({ viewport: workerData.viewport });
  parentPort.on('message', async ({ id, link, close }) => {
    if (close) {
      await browser.close();
      parentPort.postMessage({ id, closed: true });
      return;
    }
    try {
      const page = await context.newPage();
      page.on('pageerror', (error) => console.error('takeover page error: ' + error.message));
      await page.addInitScript({ content: workerData.probe });
      const opened = Date.now();
      await page.goto(link);
      const loaded = Date.now();
      await page.waitForFunction(() => window.__probe.stamps.firstDrawn > 0, undefined, { polling: 'raf', timeout: 30000 });
      const stamps = await page.evaluate(() => window.__probe.stamps);
      await page.close();
      parentPort.postMessage({ id, opened, loaded, stamps });
    } catch (error) {
      parentPort.postMessage({ id, error: String(error && error.message || error) });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ fatal: String(error) }));
`;

export interface ViewerWorker {
  visit(link: string): Promise<Visit>;
  close(): Promise<void>;
}

export async function startViewerWorker(
  flags: string[],
  viewport: { width: number; height: number },
): Promise<ViewerWorker> {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { flags, viewport, probe: PROBE_SCRIPT },
  });
  const waiting = new Map<number, { resolve: (v: Visit) => void; reject: (e: Error) => void }>();
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    worker.on(
      'message',
      (m: { ready?: boolean; fatal?: string; id?: number; error?: string } & Partial<Visit>) => {
        if (m.ready) return resolve();
        if (m.fatal) return reject(new Error(m.fatal));
        const w = m.id === undefined ? undefined : waiting.get(m.id);
        if (!w || m.id === undefined) return;
        waiting.delete(m.id);
        if (m.error) w.reject(new Error(m.error));
        else w.resolve(m as Visit);
      },
    );
    worker.once('error', reject);
  });
  const call = (message: object) =>
    new Promise<Visit>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...message });
    });
  return {
    visit: (link) => call({ link }),
    async close() {
      await call({ close: true }).catch(() => {});
      await worker.terminate();
    },
  };
}
