/** The sandbox routes over a real Runner on a fake engine: create, events, replay, delete, caps. */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runner } from '../sandbox/index.ts';
import { type BuildApiOptions, buildApi } from './index.ts';
import { type FakeContainer, type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

let app: FastifyInstance;
let runner: Runner;
let runtime: FakeRuntime;
let dispose: () => Promise<void>;

async function setUp(options: Partial<BuildApiOptions> = {}): Promise<void> {
  const fake = await fakeRunner();
  ({ runner, runtime, dispose } = fake);
  app = await buildApi({ runner, ...options });
}

afterEach(async () => {
  await app.close();
  await dispose();
});

const create = async (body: object = { image: 'grexal/agent', command: ['agent'] }) =>
  app.inject({ method: 'POST', url: '/v1/sandboxes', payload: body });

/** Parses an SSE body into frames: `{ id?, event, data }`. */
function frames(body: string): { id?: number; event: string; data: Record<string, unknown> }[] {
  return body
    .split('\n\n')
    .filter((block) => block.includes('data: '))
    .map((block) => {
      const field = (name: string) => block.match(new RegExp(`^${name}: (.*)$`, 'm'))?.[1];
      const id = field('id');
      return {
        id: id === undefined ? undefined : Number(id),
        event: field('event')!,
        data: JSON.parse(field('data')!),
      };
    });
}

function untilStarted(): Promise<FakeContainer> {
  return new Promise((resolve) => {
    runtime.onStart = resolve;
  });
}

describe('a sandbox through the API', () => {
  it('creates, streams every event with an id, replays from Last-Event-ID, and ends after exit', async () => {
    await setUp();
    const started = untilStarted();
    const res = await create({ image: 'grexal/agent', command: ['agent'], metadata: { job: '42' } });
    expect(res.statusCode).toBe(201);
    const { id, state } = res.json();
    expect(state).toBe('starting');
    const container = await started;
    container.stdout.write('hello\n');
    container.end(3);
    const events = await app.inject({ url: `/v1/sandboxes/${id}/events` });
    expect(events.headers['content-type']).toContain('text/event-stream');
    const all = frames(events.body);
    expect(all.map((f) => f.event)).toEqual(['state', 'state', 'log', 'state', 'exit']);
    expect(all.map((f) => f.data['state'] ?? f.data['type'])).toEqual([
      'starting',
      'running',
      'log',
      'exited',
      'exit',
    ]);
    expect(all.map((f) => f.id)).toEqual([1, 2, 3, 4, 5]);
    expect(all[2]!.data).toMatchObject({ id: 3, type: 'log', stream: 'stdout', text: 'hello\n' });
    expect(all[4]!.data).toMatchObject({ type: 'exit', exitCode: 3, reason: 'exited' });

    const replay = await app.inject({ url: `/v1/sandboxes/${id}/events`, headers: { 'last-event-id': '3' } });
    expect(frames(replay.body).map((f) => f.id)).toEqual([4, 5]);
    const query = await app.inject({ url: `/v1/sandboxes/${id}/events?lastEventId=4` });
    expect(frames(query.body).map((f) => f.id)).toEqual([5]);

    const view = (await app.inject({ url: `/v1/sandboxes/${id}` })).json();
    expect(view).toMatchObject({ id, state: 'exited', exitCode: 3, exitReason: 'exited', takeover: null });
    expect(view.metadata).toEqual({ job: '42' });
    expect(container.removed).toBe(true);
  });

  it('DELETE destroys, and answers 204 again for a sandbox already gone', async () => {
    await setUp();
    const started = untilStarted();
    const { id } = (await create()).json();
    const container = await started;
    const first = await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` });
    expect(first.statusCode).toBe(204);
    expect(container.removed).toBe(true);
    const second = await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` });
    expect(second.statusCode).toBe(204);
    expect((await app.inject({ url: `/v1/sandboxes/${id}` })).json()).toMatchObject({
      state: 'exited',
      exitReason: 'destroyed',
    });
  });

  it('DELETE right after create waits for the start, then leaves nothing', async () => {
    await setUp();
    const { id } = (await create()).json();
    const res = await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` });
    expect(res.statusCode).toBe(204);
    expect(runtime.containers.map((c) => c.removed)).toEqual([true]);
  });

  it('answers 429 with Retry-After over the cap, and takes new sandboxes once one is gone', async () => {
    await setUp({ maxSandboxes: 2, retryAfterSeconds: 7 });
    const a = (await create()).json();
    await create();
    const over = await create();
    expect(over.statusCode).toBe(429);
    expect(over.json().error.code).toBe('E_TOO_MANY_SANDBOXES');
    expect(over.headers['retry-after']).toBe('7');
    expect(runner.list()).toHaveLength(2);
    await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${a.id}` });
    expect((await create()).statusCode).toBe(201);
  });

  it('holds the cap under concurrent creates', async () => {
    await setUp({ maxSandboxes: 3 });
    const answers = await Promise.all(Array.from({ length: 8 }, () => create()));
    expect(answers.filter((r) => r.statusCode === 201)).toHaveLength(3);
    expect(answers.filter((r) => r.statusCode === 429)).toHaveLength(5);
  });

  it('caps the run time: refuses more, and gives the maximum by default', async () => {
    await setUp({ maxRunTimeMs: 5_000 });
    const over = await create({ image: 'grexal/agent', limits: { timeoutMs: 10_000 } });
    expect(over.statusCode).toBe(400);
    expect(over.json().error.details[0]).toMatchObject({ code: 'E_LIMIT_INVALID', path: 'limits.timeoutMs' });
    const { id } = (await create({ image: 'grexal/agent' })).json();
    expect(runner.get(id)?.options.timeoutMs).toBe(5_000);
  });

  it('close() destroys every live sandbox and refuses new ones meanwhile', async () => {
    await setUp();
    const started = untilStarted();
    const { id } = (await create()).json();
    await started;
    await app.close();
    expect(runtime.containers.every((c) => c.removed)).toBe(true);
    expect(runner.get(id)).toBeUndefined();
  });

  it('shows the open takeover, then clears it and counts its outcome', async () => {
    await setUp();
    runner.takeovers.setBaseUrl('http://runner.test');
    const started = untilStarted();
    const { id } = (await create()).json();
    await started;
    const { takeover, done } = runner.takeovers.request({
      sandboxId: id,
      reason: 'Log in',
      timeoutMs: 60_000,
      vncSocketPath: '/nonexistent/vnc.sock',
    });
    const open = (await app.inject({ url: `/v1/sandboxes/${id}` })).json().takeover;
    expect(open).toMatchObject({ id: takeover.id, reason: 'Log in' });
    const token = new URL(open.url).searchParams.get('token');
    const complete = await app.inject({
      method: 'POST',
      url: `/v1/takeovers/${takeover.id}/complete`,
      payload: { token },
    });
    expect(complete.statusCode).toBe(200);
    await done;
    expect((await app.inject({ url: `/v1/sandboxes/${id}` })).json().takeover).toBeNull();
    expect((await app.inject({ url: '/metrics' })).body).toContain(
      'grexal_takeovers_total{outcome="completed"} 1',
    );
    await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` });
    const types = frames((await app.inject({ url: `/v1/sandboxes/${id}/events` })).body).map((f) => f.event);
    expect(types).toEqual(expect.arrayContaining(['takeover.requested', 'takeover.completed']));
  });

  it('reports a failed start as state failed, then exit', async () => {
    await setUp();
    runtime.createContainer = async () => {
      throw new Error('engine exploded');
    };
    const { id } = (await create()).json();
    const all = frames((await app.inject({ url: `/v1/sandboxes/${id}/events` })).body);
    expect(all.map((f) => f.event)).toEqual(['state', 'error', 'state', 'exit']);
    expect(all[2]!.data['state']).toBe('failed');
    expect(all[3]!.data).toMatchObject({ exitCode: -1, reason: 'failed' });
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('grexal_errors_total{code="E_INTERNAL",source="sandbox"} 1');
  });

  it('records an engine loss: failed, engine_lost, the message, an E_ENGINE_LOST event before exit', async () => {
    await setUp();
    const started = untilStarted();
    const { id } = (await create()).json();
    const container = await started;
    const engine = { kind: 'lost' as const, endpoint: 'unix:///gone.sock', detail: 'the wait stream closed' };
    container.end(-1, { engine });
    const events = frames((await app.inject({ url: `/v1/sandboxes/${id}/events` })).body);
    expect(
      events.slice(-3).map((f) => [f.event, f.data['code'] ?? f.data['state'] ?? f.data['reason']]),
    ).toEqual([
      ['error', 'E_ENGINE_LOST'],
      ['state', 'failed'],
      ['exit', 'engine_lost'],
    ]);
    const view = (await app.inject({ url: `/v1/sandboxes/${id}` })).json();
    expect(view).toMatchObject({
      state: 'failed',
      exitCode: -1,
      exitReason: 'engine_lost',
      oomKilled: false,
    });
    expect(view.exitMessage).toContain('unix:///gone.sock');
    expect((await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` })).statusCode).toBe(204);
  });

  it("records the cgroup's OOM kill whatever the exit code", async () => {
    await setUp();
    const started = untilStarted();
    const { id } = (await create()).json();
    (await started).end(1, { oomKilled: true });
    await app.inject({ url: `/v1/sandboxes/${id}/events` });
    const view = (await app.inject({ url: `/v1/sandboxes/${id}` })).json();
    expect(view).toMatchObject({ state: 'exited', exitCode: 1, exitReason: 'oom', oomKilled: true });
  });
});
