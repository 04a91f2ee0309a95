/** The client against the real API on port 0 (fake engine), and against a server that drops streams. */
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ApiServer, serve } from '../api/index.ts';
import { type FakeRuntime, fakeRunner } from '../api/testing/fake-runtime.ts';
import type { TakeoverBroker } from '../takeover/index.ts';
import { isRunnerApiError, RunnerApiError, RunnerClient, type StreamEvent } from './index.ts';
import { SseParser } from './sse-parser.ts';

const TOKEN = 'client-test-token';
let server: ApiServer;
let runtime: FakeRuntime;
let broker: TakeoverBroker;
let dispose: () => Promise<void>;
let client: RunnerClient;

beforeEach(async () => {
  const fake = await fakeRunner();
  runtime = fake.runtime;
  dispose = fake.dispose;
  broker = fake.runner.takeovers;
  server = await serve({ runner: fake.runner, token: TOKEN, port: 0 });
  client = new RunnerClient({ baseUrl: server.url, token: TOKEN });
});

afterEach(async () => {
  await server.close();
  await dispose();
});

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe('RunnerClient', () => {
  it('creates, follows typed events to exit, resumes after an id, gets and deletes', async () => {
    runtime.onStart = (container) => {
      container.stdout.write('out\n');
      container.end(0);
    };
    const { id, state } = await client.create({ image: 'grexal/agent', command: ['x'] });
    expect(state).toBe('starting');
    const events = await collect(client.events(id));
    expect(events.map((e) => e.type)).toEqual(['state', 'claimed', 'state', 'log', 'state', 'exit']);
    const log = events[3]!;
    expect(log.type === 'log' && log.text).toBe('out\n');
    const resumed = await collect(client.events(id, { lastEventId: 4 }));
    expect(resumed.map((e) => (e.type === 'truncated' ? 0 : e.id))).toEqual([5, 6]);
    expect(await client.get(id)).toMatchObject({ id, state: 'exited', exitCode: 0 });
    await client.delete(id);
    await client.delete(id);
  });

  it('turns the error envelope into RunnerApiError with code, status and details', async () => {
    const error = await client.create({ image: '' } as never).catch((e: unknown) => e);
    expect(isRunnerApiError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'E_VALIDATION', status: 400 });
    expect((error as RunnerApiError).details).toEqual([expect.objectContaining({ path: 'image' })]);
    const wrong = new RunnerClient({ baseUrl: server.url, token: 'nope' });
    await expect(wrong.get('sbx_x')).rejects.toMatchObject({ code: 'E_UNAUTHORIZED', status: 401 });
    await expect(client.get('sbx_x')).rejects.toMatchObject({ code: 'E_SANDBOX_NOT_FOUND', status: 404 });
    await expect(collect(client.events('sbx_x'))).rejects.toMatchObject({ code: 'E_SANDBOX_NOT_FOUND' });
  });

  it('says when the runner cannot be reached', async () => {
    const gone = new RunnerClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(gone.get('sbx_x')).rejects.toMatchObject({ code: 'E_RUNNER_UNREACHABLE', status: 0 });
  });

  it('completes and cancels takeovers with their token, through the mounted routes', async () => {
    const links: string[] = [];
    const open = (sandboxId: string) => {
      const request = {
        sandboxId,
        reason: 'log in',
        timeoutMs: 60_000,
        vncSocketPath: '/nonexistent/vnc.sock',
      };
      const { takeover, done } = broker.request(request);
      links.push(broker.linkFor(takeover.id)!);
      return { takeover, done };
    };
    const first = open('sbx_a');
    const token = new URL(links[0]!).searchParams.get('token')!;
    expect(links[0]!.startsWith(`${server.url}/takeover/`)).toBe(true);
    await expect(client.completeTakeover(first.takeover.id, 'x'.repeat(43))).rejects.toMatchObject({
      code: 'E_TAKEOVER_TOKEN_INVALID',
      status: 403,
    });
    expect(await client.completeTakeover(first.takeover.id, token)).toMatchObject({ state: 'completed' });
    await expect(first.done).resolves.toBe('completed');
    const second = open('sbx_b');
    const secondToken = new URL(links[1]!).searchParams.get('token')!;
    expect(await client.cancelTakeover(second.takeover.id, secondToken)).toMatchObject({
      state: 'cancelled',
    });
    await expect(second.done).rejects.toBeDefined();
    await expect(client.completeTakeover(second.takeover.id, secondToken)).rejects.toMatchObject({
      status: 410,
    });
  });
});

describe('RunnerClient.events over a dropping stream', () => {
  let dropping: Server;
  const seenLastIds: (string | undefined)[] = [];

  beforeEach(async () => {
    seenLastIds.length = 0;
    dropping = createServer((req, res) => {
      const last = req.headers['last-event-id'] as string | undefined;
      seenLastIds.push(last);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const event = (id: number, type: string, extra = '') =>
        `id: ${id}\r\nevent: ${type}\r\ndata: {"id":${id},"type":"${type}"${extra}}\r\n\r\n`;
      if (last === undefined) {
        res.write(`: hello\n\n${event(1, 'state', ',"state":"running"')}${event(2, 'log', ',"text":"a"')}`);
        setTimeout(() => res.socket?.destroy(), 20);
      } else res.end(event(3, 'exit', ',"exitCode":0,"reason":"exited"'));
    });
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    dropping.closeAllConnections();
    await new Promise((resolve) => dropping.close(resolve));
  });

  it('reconnects with the last id it saw and ends at exit', async () => {
    const { port } = dropping.address() as AddressInfo;
    const events = await collect(new RunnerClient({ baseUrl: `http://127.0.0.1:${port}` }).events('sbx_x'));
    expect(events.map((e) => e.type)).toEqual(['state', 'log', 'exit']);
    expect(seenLastIds).toEqual([undefined, '2']);
  });

  it('gives up after maxReconnects', async () => {
    const { port } = dropping.address() as AddressInfo;
    const once = new RunnerClient({ baseUrl: `http://127.0.0.1:${port}` }).events('sbx_x', {
      maxReconnects: 0,
    });
    await expect(collect(once)).rejects.toBeDefined();
  });
});

describe('RunnerClient.events over streams that end at once', () => {
  it("leaves no listener on the caller's signal after its reconnects", async () => {
    const empty = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end();
    });
    await new Promise<void>((resolve) => empty.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = empty.address() as AddressInfo;
      const signal = new AbortController().signal;
      const events = new RunnerClient({ baseUrl: `http://127.0.0.1:${port}` }).events('sbx_x', {
        maxReconnects: 3,
        signal,
      });
      await expect(collect(events)).rejects.toMatchObject({ code: 'E_RUNNER_UNREACHABLE' });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    } finally {
      await new Promise((resolve) => empty.close(resolve));
    }
  });
});

describe('SseParser', () => {
  it('handles CRLF, CR, multi-line data, comments and chunks split anywhere', () => {
    const text = ': c\r\nid: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\nevent: b\rdata: z\r\rdata: w\n\n';
    for (const size of [1, 2, 3, text.length]) {
      const parser = new SseParser();
      const out = [];
      for (let i = 0; i < text.length; i += size) out.push(...parser.push(text.slice(i, i + size)));
      expect(out).toEqual([
        { id: '1', event: 'a', data: 'x\ny' },
        { event: 'b', data: 'z' },
        { event: 'message', data: 'w' },
      ]);
      expect(parser.lastEventId).toBe('1');
    }
  });

  it('keeps RunnerApiError a plain Error with a name', () => {
    const error = new RunnerApiError('E_X', 'm', 400);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RunnerApiError');
  });
});
