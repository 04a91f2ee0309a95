import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LineSplitter } from '../../sandbox-agent/protocol.ts';
import { CtxServer } from './ctx-server.ts';

const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** Sends raw lines and collects `count` answers. */
function exchange(path: string, lines: string[], count: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const splitter = new LineSplitter();
    const answers: unknown[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) answers.push(JSON.parse(line));
      if (answers.length >= count) {
        socket.end();
        resolve(answers);
      }
    });
    socket.on('error', reject);
    socket.write(lines.map((l) => `${l}\n`).join(''));
  });
}

describe('CtxServer', () => {
  let dir: string;
  let server: CtxServer | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ctx-server-'));
  });
  afterEach(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers requests, coded errors and bad lines, matched by id', async () => {
    server = await CtxServer.listen(
      join(dir, 'ctx.sock'),
      {
        connect: async (params) => {
          const id = (params as { connectionId: string }).connectionId;
          if (id === 'nope')
            throw Object.assign(new Error('Connection nope is not declared.'), { code: 'not_declared' });
          if (id === 'boom') throw new Error('secret internals');
          return { mode: 'secret_input', fields: { id } };
        },
      },
      { owner },
    );
    const answers = await exchange(
      server.socketPath,
      [
        JSON.stringify({ id: 1, method: 'connect', params: { connectionId: 'openai' } }),
        JSON.stringify({ id: 2, method: 'connect', params: { connectionId: 'nope' } }),
        JSON.stringify({ id: 3, method: 'connect', params: { connectionId: 'boom' } }),
        JSON.stringify({ id: 4, method: 'launch_missiles' }),
        'not json',
      ],
      5,
    );
    expect(answers).toEqual(
      expect.arrayContaining([
        { id: 1, result: { mode: 'secret_input', fields: { id: 'openai' } } },
        { id: 2, error: { code: 'not_declared', message: 'Connection nope is not declared.' } },
        { id: 3, error: { code: 'internal', message: 'The runner failed to answer.' } },
        { id: 4, error: { code: 'unknown_method', message: "Unknown method 'launch_missiles'." } },
        { id: null, error: { code: 'invalid_request', message: 'Not a valid ctx request line.' } },
      ]),
    );
  });

  it('refuses a request whose text has no UTF-8 form before any handler sees it', async () => {
    let called = 0;
    server = await CtxServer.listen(
      join(dir, 'ctx.sock'),
      {
        request_takeover: async () => {
          called++;
          return {};
        },
      },
      { owner },
    );
    const answers = await exchange(
      server.socketPath,
      ['{"id":7,"method":"request_takeover","params":{"reason":"log in \\ud800"}}'],
      1,
    );
    expect(answers).toEqual([
      {
        id: 7,
        error: {
          code: 'invalid_request',
          message: 'params.reason holds a lone UTF-16 surrogate; send valid Unicode.',
        },
      },
    ]);
    expect(called).toBe(0);
  });

  it('makes the socket reachable by its owner only, and removes it on close', async () => {
    server = await CtxServer.listen(join(dir, 'ctx.sock'), {}, { owner });
    expect((await stat(server.socketPath)).mode & 0o777).toBe(0o600);
    await server.close();
    await expect(stat(join(dir, 'ctx.sock'))).rejects.toThrow();
  });

  it('aborts a pending call when its client goes away', async () => {
    let aborted!: () => void;
    const sawAbort = new Promise<void>((resolve) => {
      aborted = resolve;
    });
    server = await CtxServer.listen(
      join(dir, 'ctx.sock'),
      {
        request_takeover: (_params, call) =>
          new Promise((_resolve, reject) => {
            call.signal.addEventListener('abort', () => {
              aborted();
              reject(new Error('gone'));
            });
          }),
      },
      { owner },
    );
    const socket = connect(server.socketPath);
    socket.write(`${JSON.stringify({ id: 1, method: 'request_takeover', params: {} })}\n`);
    setTimeout(() => socket.destroy(), 20);
    await sawAbort;
  });
});
