/**
 * Input held until the agent is frozen (TakeoverRequest.ready): what becomes of it when the user's
 * page reconnects with the same viewer key, and what the runner logs about it (counts and bytes,
 * never what was typed). Real node:http server, real ws clients, the fake RFB server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TakeoverBroker } from './broker.ts';
import { startTakeoverServer, type TakeoverHttpOptions, type TakeoverServer } from './http.ts';
import { deferred } from './testing/deferred.ts';
import { handshake, messages, type OpenedViewer, openViewer } from './testing/rfb-client.ts';
import { type FakeRfbServer, startFakeRfbServer } from './testing/rfb-server.ts';
import { CLOSE_CODES } from './types.ts';

const KEY = 'page-key-0123456789';
const SECRET = 'hunter2-typed-password';

let dir: string;
let vnc: FakeRfbServer;
let broker: TakeoverBroker;
let server: TakeoverServer | undefined;
let lines: string[];
const viewers: OpenedViewer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-takeover-held-'));
  vnc = await startFakeRfbServer(join(dir, 'vnc.sock'), { width: 64, height: 32 });
  broker = new TakeoverBroker();
  await writeFile(join(dir, 'takeover.js'), 'console.log(1)');
  lines = [];
});

/** The takeover server, logging into `lines`; spares that ask nothing ahead unless told otherwise. */
async function serve(options: Partial<TakeoverHttpOptions> = { firstUpdateAhead: false }): Promise<void> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  server = await startTakeoverServer({
    broker,
    assetsDir: dir,
    heartbeatMs: 0,
    log: pino({ level: 'info' }, sink),
    ...options,
  });
}

afterEach(async () => {
  for (const v of viewers.splice(0)) v.ws.terminate();
  broker.close();
  await server?.close();
  server = undefined;
  await vnc.close();
  await rm(dir, { recursive: true, force: true });
});

function open(ready: Promise<void>): { id: string; token: string } {
  const { takeover } = broker.request({
    sandboxId: 'sb1',
    reason: 'Log in',
    timeoutMs: 60_000,
    vncSocketPath: vnc.path,
    shown: Promise.resolve(),
    ready,
  });
  const token = new URL(broker.linkFor(takeover.id)!).searchParams.get('token')!;
  return { id: takeover.id, token };
}

function streamUrl(id: string, token: string, key: string): string {
  const url = new URL(`/v1/takeovers/${id}/stream`, server!.url.replace('http', 'ws'));
  url.searchParams.set('token', token);
  url.searchParams.set('viewer', key);
  return url.href;
}

async function connect(url: string, shake = true): Promise<OpenedViewer> {
  const v = await openViewer(url);
  viewers.push(v);
  if (shake) await handshake(v);
  return v;
}

/** The keysyms each desktop connection got, for those that got any. */
function keysPerDesktop(): number[][] {
  return vnc.connections
    .map((c) => c.messages.filter((m) => m.type === 4).map((m) => m.bytes.readUInt32BE(4)))
    .filter((keys) => keys.length > 0);
}

/** The parsed log lines with this message. */
function logged(msg: string): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === msg);
}

async function updateRequested(count: number): Promise<void> {
  await expect
    .poll(() => vnc.connections.filter((c) => c.messages.some((m) => m.type === 3)).length)
    .toBe(count);
}

// Without spares every viewer's handshake goes to the desktop itself: carried keys written before
// the new socket's ClientInit would land inside it.
it.each([
  ['spares', { firstUpdateAhead: false }],
  ['no spares', { firstFrameAhead: false }],
])(
  'carries a replaced viewer’s held input to the new connection: once, in order, after its handshake (%s)',
  async (_, options) => {
    await serve(options);
    const ready = deferred();
    const { id, token } = open(ready.promise);
    const first = await connect(streamUrl(id, token, KEY));
    first.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 1, 1), messages.key(0x62)]));
    await updateRequested(1);
    await expect.poll(() => logged('holding viewer input until the agent is frozen').length).toBe(1);
    // The page reconnects with its key; the agent is frozen before the new socket has done its
    // handshake, so the carried keys must wait for it (RFB messages inside a handshake would break it).
    const again = await connect(streamUrl(id, token, KEY), false);
    expect((await first.closed).code).toBe(CLOSE_CODES.replaced);
    ready.resolve();
    await ready.promise;
    await handshake(again);
    again.ws.send(Buffer.concat([messages.key(0x63), messages.update(0, 0, 1, 1)]));
    await updateRequested(2);
    await expect.poll(() => keysPerDesktop()).toEqual([[0x61, 0x62, 0x63]]);
    expect(logged('dropped viewer input')).toEqual([]);
  },
);

it('logs holding, the replacement and the release with counts and bytes only, never what was typed', async () => {
  await serve();
  const ready = deferred();
  const { id, token } = open(ready.promise);
  const first = await connect(streamUrl(id, token, KEY));
  const paste = messages.cutText(SECRET);
  first.ws.send(Buffer.concat([paste, messages.key(0x61), messages.update(0, 0, 1, 1)]));
  await updateRequested(1);
  const again = await connect(streamUrl(id, token, KEY));
  await first.closed;
  again.ws.send(Buffer.concat([messages.key(0x62), messages.update(0, 0, 1, 1)]));
  await updateRequested(2);
  ready.resolve();
  await expect.poll(() => logged('released held viewer input').length).toBe(1);

  const holding = logged('holding viewer input until the agent is frozen');
  expect(holding.length).toBe(2);
  expect(holding[0]).toMatchObject({ takeoverId: id, messages: 2, bytes: paste.length + 8, carried: false });
  expect(holding[1]).toMatchObject({ takeoverId: id, messages: 2, carried: true });
  expect(logged('viewer replaced by a new connection with the same key')).toEqual([
    expect.objectContaining({ takeoverId: id, carriedMessages: 2, carriedBytes: paste.length + 8 }),
  ]);
  const [released] = logged('released held viewer input');
  expect(released).toMatchObject({ takeoverId: id, messages: 3, bytes: paste.length + 16 });
  expect(typeof released?.heldMs).toBe('number');
  await expect.poll(() => keysPerDesktop()).toEqual([[0x61, 0x62]]);
  const all = lines.join('\n');
  for (const secret of [SECRET, KEY, token]) expect(all).not.toContain(secret);
  expect(all).not.toMatch(/keysym|"text"|"data"/);
});

it('logs held input dropped when the viewer leaves, and when the takeover ends before the freeze', async () => {
  await serve();
  const ready = deferred();
  const { id, token } = open(ready.promise);
  const leaving = await connect(streamUrl(id, token, KEY));
  leaving.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 1, 1)]));
  await updateRequested(1);
  leaving.ws.close();
  await expect.poll(() => logged('dropped viewer input').length).toBe(1);
  expect(logged('dropped viewer input')[0]).toMatchObject({ takeoverId: id, messages: 1, bytes: 8 });
  expect(String(logged('dropped viewer input')[0]?.why)).toMatch(/^closed/);

  const staying = await connect(streamUrl(id, token, 'other-key-0123456789'));
  staying.ws.send(Buffer.concat([messages.cutText(SECRET), messages.update(0, 0, 1, 1)]));
  await updateRequested(2);
  ready.reject(new Error('the freeze failed'));
  await expect.poll(() => logged('dropped viewer input').length).toBe(2);
  expect(logged('dropped viewer input')[1]).toMatchObject({
    takeoverId: id,
    messages: 1,
    why: 'the takeover ended before the agent was frozen',
  });
  expect(keysPerDesktop()).toEqual([]);
  expect(lines.join('\n')).not.toContain(SECRET);
});
