/**
 * The orchestrator API against a real runner and the real engine: contract answers, event order,
 * replay, idempotent DELETE, the cap, and SIGTERM on `grexal serve` leaving no container behind.
 */
import { describe, expect, it } from 'vitest';
import { RunnerClient, type StreamEvent } from '../runner/index.ts';
import { eventually, sandboxContainers, sandboxDirs, startCli } from './helpers.ts';
import { useServedRunner } from './served-runner.ts';

const TOKEN = 'api-test-token-5f0c2b';
const IMAGE = 'grexal/agent';
const served = useServedRunner({ token: TOKEN, maxSandboxes: 2 });

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${served.server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers },
  });

describe('grexal serve API on the real engine', () => {
  it('refuses a missing or wrong token with 401', async () => {
    const none = await fetch(`${served.server.url}/v1/sandboxes/sbx_x`);
    expect([none.status, (await none.json()).error.code]).toEqual([401, 'E_UNAUTHORIZED']);
    const wrong = await api('/v1/sandboxes/sbx_x', { headers: { authorization: 'Bearer not-it' } });
    expect([wrong.status, (await wrong.json()).error.code]).toEqual([401, 'E_UNAUTHORIZED']);
  });

  it('answers bad bodies with 400, codes and paths, creating nothing', async () => {
    const before = (await sandboxContainers()).length;
    const res = await api('/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ command: [], limits: { cpus: 0 }, surprise: 1 }),
    });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('E_VALIDATION');
    expect(error.details.map((p: { code: string; path: string }) => `${p.code}@${p.path}`)).toEqual(
      expect.arrayContaining(['E_FIELD_REQUIRED@image', 'E_LIMIT_INVALID@limits.cpus', 'E_FIELD_UNKNOWN@']),
    );
    const notJson = await api('/v1/sandboxes', { method: 'POST', body: '{' });
    expect([notJson.status, (await notJson.json()).error.code]).toEqual([400, 'E_BODY_INVALID_JSON']);
    const missing = await api('/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ image: 'grexal/nope:x' }),
    });
    expect([missing.status, (await missing.json()).error.code]).toEqual([400, 'E_IMAGE_NOT_FOUND']);
    expect((await sandboxContainers()).length).toBe(before);
  });

  it('answers 404 for ids that are not ours', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await api('/v1/sandboxes/sbx_00000000000000000000', { method });
      expect([res.status, (await res.json()).error.code]).toEqual([404, 'E_SANDBOX_NOT_FOUND']);
    }
  });

  it('streams state, log and exit in order, replays from Last-Event-ID, and DELETE twice leaves nothing', async () => {
    const { id } = await served.client.create({
      image: IMAGE,
      command: ['sh', '-c', 'echo one; echo two >&2; exit 7'],
    });
    served.created.push(id);
    const events = await collect(served.client.events(id));
    const summary = events.map((e) => (e.type === 'state' ? `state:${e.state}` : e.type));
    expect(summary[0]).toBe('state:starting');
    expect(summary[1]).toBe('claimed');
    expect(events[1]).toMatchObject({ type: 'claimed', warm: false });
    expect(summary[2]).toBe('state:running');
    expect(summary.slice(-2)).toEqual(['state:exited', 'exit']);
    const logs = events.flatMap((e) => (e.type === 'log' ? [`${e.stream}:${e.text}`] : []));
    expect(logs.sort()).toEqual(['stderr:two\n', 'stdout:one\n']);
    const exit = events.at(-1)!;
    expect(exit).toMatchObject({ type: 'exit', exitCode: 7, reason: 'exited' });
    const ids = events.map((e) => (e.type === 'truncated' ? -1 : e.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));

    const replay = await collect(served.client.events(id, { lastEventId: 2 }));
    expect(replay).toEqual(events.slice(2));

    await served.client.delete(id);
    await served.client.delete(id);
    expect(await sandboxContainers(id)).toEqual([]);
    expect((await sandboxDirs(served.stateDir)).filter((d) => d.endsWith(id))).toEqual([]);
  });

  it('DELETE destroys a running sandbox and the stream ends with exit', async () => {
    const { id } = await served.client.create({ image: IMAGE, command: ['sleep', '60'] });
    served.created.push(id);
    const stream = collect(served.client.events(id));
    await eventually(async () => (await served.client.get(id)).state === 'running', `${id} running`);
    expect(await sandboxContainers(id)).toHaveLength(1);
    await served.client.delete(id);
    expect(await sandboxContainers(id)).toEqual([]);
    expect((await stream).at(-1)).toMatchObject({ type: 'exit', reason: 'destroyed' });
    expect(await served.client.get(id)).toMatchObject({ state: 'exited', exitReason: 'destroyed' });
  });

  it('delivers credentials to the agent with its output masked, and names a missing one', async () => {
    const secret = 'sk-api-test-7c1d9e0f5a2b';
    const manifest = {
      connections: [
        {
          id: 'openai',
          mode: 'secret_input' as const,
          fields: [{ key: 'api_key' }],
          env: { OPENAI_API_KEY: 'api_key' },
        },
      ],
    };
    const { id } = await served.client.create({
      image: IMAGE,
      command: ['sh', '-c', 'echo "key=$OPENAI_API_KEY"'],
      manifest,
      credentials: { openai: { fields: { api_key: secret } } },
    });
    served.created.push(id);
    const events = await collect(served.client.events(id));
    const output = events.flatMap((e) => (e.type === 'log' ? [e.text] : [])).join('');
    expect(output).toMatch(/^key=\S+\n$/);
    expect(output).not.toContain(secret);
    expect(JSON.stringify(events)).not.toContain(secret);
    const missing = await api('/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ image: IMAGE, manifest }),
    });
    const { error } = await missing.json();
    expect([missing.status, error.code, error.details[0].path]).toEqual([
      400,
      'E_MISSING_CREDENTIALS',
      'credentials.openai',
    ]);
  });

  it('answers 429 with Retry-After over the cap', async () => {
    const a = await served.client.create({ image: IMAGE, command: ['sleep', '60'] });
    const b = await served.client.create({ image: IMAGE, command: ['sleep', '60'] });
    served.created.push(a.id, b.id);
    const over = await api('/v1/sandboxes', { method: 'POST', body: JSON.stringify({ image: IMAGE }) });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await over.json()).error.code).toBe('E_TOO_MANY_SANDBOXES');
    await Promise.all([served.client.delete(a.id), served.client.delete(b.id)]);
    expect([...(await sandboxContainers(a.id)), ...(await sandboxContainers(b.id))]).toEqual([]);
  });
});

describe('grexal serve as a process', () => {
  it('on SIGTERM destroys its live sandbox, exits 0, and leaves no container', async () => {
    const env = { GREXAL_STATE_DIR: served.stateDir, GREXAL_RUNNER_TOKEN: TOKEN, GREXAL_LOG_LEVEL: 'warn' };
    const cli = startCli(['serve', '--port', '0'], env);
    try {
      const [, url] = await cli.waitFor(/serving on (http:\/\/\S+)/, 'stderr');
      const child = new RunnerClient({ baseUrl: url!, token: TOKEN });
      const { id } = await child.create({ image: IMAGE, command: ['sleep', '300'] });
      served.created.push(id);
      await eventually(async () => (await child.get(id)).state === 'running', `${id} running`);
      expect(await sandboxContainers(id)).toHaveLength(1);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(await sandboxContainers(id)).toEqual([]);
      expect(cli.stderr).toContain('stopped');
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('refuses to listen beyond loopback without a token', async () => {
    const cli = startCli(['serve', '--host', '0.0.0.0', '--port', '0'], {
      GREXAL_STATE_DIR: served.stateDir,
      GREXAL_RUNNER_TOKEN: '',
    });
    expect(await cli.exited).toBe(1);
    expect(cli.stderr).toContain('E_TOKEN_REQUIRED');
    expect(cli.stderr).toContain('GREXAL_RUNNER_TOKEN');
  });
});
