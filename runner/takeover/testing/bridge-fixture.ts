/**
 * The fixture of the bridge tests (runner/takeover/bridge-*.test.ts): the bridge and the HTTP routes
 * end to end, with a real node:http server, real ws clients, and a fake RFB server on a temporary
 * Unix socket that records what reached "the desktop". A test file calls useBridgeFixture() at its
 * top; the bindings below are then its current test's (ES module bindings follow reassignment).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { TakeoverBroker } from '../broker.ts';
import { startTakeoverServer, type TakeoverServer } from '../http.ts';
import { handshake, type OpenedViewer, openViewer } from './rfb-client.ts';
import { type FakeRfbServer, startFakeRfbServer } from './rfb-server.ts';

export let dir: string;
export let vnc: FakeRfbServer;
export let broker: TakeoverBroker;
export let server: TakeoverServer;
/** Viewers a test opened: terminated after it. */
export const viewers: OpenedViewer[] = [];

export function useBridgeFixture(): void {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grexal-takeover-'));
    vnc = await startFakeRfbServer(join(dir, 'vnc.sock'), { width: 64, height: 32 });
    broker = new TakeoverBroker();
    await writeFile(join(dir, 'takeover.js'), 'console.log(1)');
    // Spares that send nothing past ClientInit: every viewer's own requests reach "the desktop".
    // The first update asked for ahead has its own tests (restartServer()).
    server = await startTakeoverServer({ broker, assetsDir: dir, heartbeatMs: 0, firstUpdateAhead: false });
  });

  afterEach(async () => {
    for (const v of viewers.splice(0)) v.ws.terminate();
    broker.close();
    await server.close();
    await vnc.close();
    await rm(dir, { recursive: true, force: true });
  });
}

/** Replaces the test's server by one with the defaults (its spares ask for the first frame ahead). */
export async function restartServer(): Promise<void> {
  await server.close();
  server = await startTakeoverServer({ broker, assetsDir: dir, heartbeatMs: 0 });
}

export function open(
  vncSocketPath = vnc.path,
  room: { ready?: Promise<void>; shown?: Promise<void>; onStreaming?: () => void } = {},
): { id: string; token: string; done: Promise<'completed'> } {
  const { takeover, done } = broker.request({
    sandboxId: 'sb1',
    reason: 'Log in to <b>Example</b>',
    label: 'Example & co',
    timeoutMs: 60_000,
    vncSocketPath,
    ...room,
  });
  const token = new URL(broker.linkFor(takeover.id)!).searchParams.get('token')!;
  return { id: takeover.id, token, done };
}

export function streamUrl(id: string, token?: string, viewer?: string): string {
  const url = new URL(`/v1/takeovers/${id}/stream`, server.url.replace('http', 'ws'));
  if (token !== undefined) url.searchParams.set('token', token);
  if (viewer) url.searchParams.set('viewer', viewer);
  return url.href;
}

export async function viewer(url: string, origin?: string): Promise<OpenedViewer> {
  const v = await openViewer(url, origin ? { origin } : {});
  viewers.push(v);
  await handshake(v);
  return v;
}

export async function refusedStatus(url: string, origin?: string): Promise<number> {
  const error = await openViewer(url, origin ? { origin } : {}).then(
    (v) => {
      viewers.push(v);
      return undefined;
    },
    (e: { status?: number }) => e,
  );
  return error?.status ?? 0;
}

/**
 * The message types each desktop connection got, for those that got any (the runner's spares get
 * none), longest first: which connection a viewer lands on depends on whether a spare was ready.
 */
export function desktops(): number[][] {
  return vnc.connections
    .map((c) => c.messages.map((m) => m.type))
    .filter((types) => types.length > 0)
    .sort((a, b) => b.length - a.length);
}

/** Resolves once `count` desktop connections have had an update request each. */
export async function updateRequestsOn(count: number): Promise<number[][]> {
  await expect.poll(() => desktops().filter((types) => types.includes(3)).length).toBe(count);
  return desktops();
}
