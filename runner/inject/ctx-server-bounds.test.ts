/** What an agent can make the ctx server hold: line size, connections, calls in flight. */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineSplitter } from '../../sandbox-agent/protocol.ts';
import { warningsDuring } from '../testing/warnings.ts';
import { CtxServer, MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_REQUEST_LINE_BYTES } from './ctx-server.ts';

const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const request = (id: number) =>
  `${JSON.stringify({ id, method: 'connect', params: { connectionId: 'a' } })}\n`;

async function open(path: string): Promise<Socket> {
  const socket = connect(path);
  await once(socket, 'connect');
  return socket;
}

/** The next `count` answers on `socket`. */
function answers(socket: Socket, count: number): Promise<unknown[]> {
  const splitter = new LineSplitter();
  const got: unknown[] = [];
  socket.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) got.push(JSON.parse(line));
      if (got.length >= count) resolve(got);
    });
    socket.on('close', () => reject(new Error(`closed after ${got.length} answers`)));
  });
}

const closed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    socket.on('close', () => resolve());
  });

describe('CtxServer bounds', () => {
  let dir: string;
  let server: CtxServer | undefined;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctx-bounds-'));
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('closes a connection whose request line is too long, and only that one', async () => {
    server = await CtxServer.listen(join(dir, 'ctx.sock'), { connect: async () => ({ ok: 1 }) }, { owner });
    const abuser = await open(server.socketPath);
    const other = await open(server.socketPath);
    sockets.push(abuser, other);
    abuser.on('error', () => {});
    abuser.write('x'.repeat(MAX_REQUEST_LINE_BYTES + 70_000));
    await closed(abuser);
    const answered = answers(other, 1);
    other.write(request(1));
    expect(await answered).toEqual([{ id: 1, result: { ok: 1 } }]);
  });

  it('pushes out the oldest idle connection past the cap, never one with a call in flight', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    server = await CtxServer.listen(
      join(dir, 'ctx.sock'),
      {
        connect: async (params) => ((params as { connectionId: string }).connectionId === 'wait' ? held : {}),
      },
      { owner },
    );
    const busy = await open(server.socketPath);
    sockets.push(busy);
    const busyAnswer = answers(busy, 1);
    busy.write(`${JSON.stringify({ id: 1, method: 'connect', params: { connectionId: 'wait' } })}\n`);
    const idle: Socket[] = [];
    for (let i = 1; i < MAX_CONNECTIONS; i++) idle.push(await open(server.socketPath));
    sockets.push(...idle);
    // A round trip on the newest proves the server has accepted every one before.
    const last = idle[idle.length - 1] as Socket;
    const lastAnswer = answers(last, 1);
    last.write(request(2));
    await lastAnswer;
    const newcomer = await open(server.socketPath);
    sockets.push(newcomer);
    await closed(idle[0] as Socket);
    const fresh = answers(newcomer, 1);
    newcomer.write(request(3));
    expect(await fresh).toEqual([{ id: 3, result: {} }]);
    release();
    expect(await busyAnswer).toEqual([{ id: 1, result: {} }]);
  });

  it('runs at most MAX_IN_FLIGHT calls of one connection at once, then the rest in turn', async () => {
    let running = 0;
    let most = 0;
    server = await CtxServer.listen(
      join(dir, 'ctx.sock'),
      {
        connect: async () => {
          running++;
          most = Math.max(most, running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          running--;
          return {};
        },
      },
      { owner },
    );
    const socket = await open(server.socketPath);
    sockets.push(socket);
    const count = MAX_IN_FLIGHT * 5;
    const all = answers(socket, count);
    socket.write(Array.from({ length: count }, (_, i) => request(i)).join(''));
    expect((await all).length).toBe(count);
    expect(most).toBe(MAX_IN_FLIGHT);
  });

  it('lets MAX_IN_FLIGHT calls of one connection wait on its signal without a leak warning', async () => {
    const warnings = await warningsDuring(async () => {
      server = await CtxServer.listen(
        join(dir, 'ctx.sock'),
        {
          // As a connect waiting for an OAuth refresh does: one listener on the call's signal.
          connect: async (_params, call) => {
            const onAbort = () => {};
            call.signal.addEventListener('abort', onAbort);
            await new Promise((resolve) => setTimeout(resolve, 20));
            call.signal.removeEventListener('abort', onAbort);
            return {};
          },
        },
        { owner },
      );
      const socket = await open(server.socketPath);
      sockets.push(socket);
      const all = answers(socket, MAX_IN_FLIGHT);
      socket.write(Array.from({ length: MAX_IN_FLIGHT }, (_, i) => request(i)).join(''));
      expect((await all).length).toBe(MAX_IN_FLIGHT);
    });
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });
});
