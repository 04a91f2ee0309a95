import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CTX_SOCKET_PATH } from '../wire.ts';
import { CtxError, ctx } from './ctx.ts';
import { FakeCtxServer, type FakeRequest } from './fake-ctx-server.ts';

let server: FakeCtxServer;

beforeAll(async () => {
  server = await FakeCtxServer.start();
  process.env['GREXAL_CTX_SOCKET'] = server.path;
});

afterAll(async () => {
  await server.close();
  delete process.env['GREXAL_CTX_SOCKET'];
});

beforeEach(() => {
  server.requests.length = 0;
  server.handler = () => ({ result: {} });
});

async function ctxFailure(promise: Promise<unknown>): Promise<CtxError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CtxError);
    return error as CtxError;
  }
  throw new Error('expected a CtxError');
}

const secretInput = { mode: 'secret_input', fields: { api_key: 'sk-test-123456' } };

describe('JS ctx client', () => {
  it('sends one NDJSON request per call and returns the result', async () => {
    server.handler = () => ({ result: secretInput });
    expect(await ctx.connect('openai')).toEqual(secretInput);
    expect(server.requests).toEqual([
      { id: expect.any(Number), method: 'connect', params: { connectionId: 'openai' } },
    ]);
  });

  it('sends wait: false only when the caller opts out of waiting for a broken connection', async () => {
    server.handler = () => ({ result: secretInput });
    await ctx.connect('gmail', { wait: false });
    await ctx.connect('gmail', { wait: true });
    expect(server.requests.map((r) => r.params)).toEqual([
      { connectionId: 'gmail', wait: false },
      { connectionId: 'gmail' },
    ]);
  });

  it('raises CtxError carrying the protocol code', async () => {
    server.handler = () => ({
      error: { code: 'not_declared', message: 'Connection "github" is not declared.' },
    });
    const error = await ctxFailure(ctx.connect('github'));
    expect(error.code).toBe('not_declared');
    expect(error.message).toContain('github');
  });

  it('matches answers that come out of order to their calls over one socket', async () => {
    const before = server.connections;
    server.handler = (r: FakeRequest) => {
      const id = (r.params as { connectionId: string }).connectionId;
      return { result: { mode: 'secret_input', fields: { id } }, delayMs: id === 'slow' ? 30 : 0 };
    };
    const [slow, fast] = await Promise.all([ctx.connect('slow'), ctx.connect('fast')]);
    expect(slow).toEqual({ mode: 'secret_input', fields: { id: 'slow' } });
    expect(fast).toEqual({ mode: 'secret_input', fields: { id: 'fast' } });
    expect(server.connections - before).toBeLessThanOrEqual(1);
    const ids = server.requests.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sends request_takeover params as given', async () => {
    server.handler = () => ({ result: { outcome: 'completed' } });
    expect(
      await ctx.requestTakeover({ connectionId: 'linkedin', reason: 'Log in', timeoutMs: 60_000 }),
    ).toEqual({ outcome: 'completed' });
    expect(await ctx.requestTakeover({ reason: 'Solve the captcha' })).toEqual({ outcome: 'completed' });
    await ctx.requestTakeover({ reason: 'Log in', until: { url: 'https://x.test/home*', cookie: 'sid' } });
    expect(server.requests.map((r) => [r.method, r.params])).toEqual([
      ['request_takeover', { connectionId: 'linkedin', reason: 'Log in', timeoutMs: 60_000 }],
      ['request_takeover', { reason: 'Solve the captcha' }],
      ['request_takeover', { reason: 'Log in', until: { url: 'https://x.test/home*', cookie: 'sid' } }],
    ]);
  });

  it('fails pending calls with `unavailable` when the runner hangs up, then reconnects', async () => {
    server.handler = () => 'hang-up';
    expect((await ctxFailure(ctx.connect('openai'))).code).toBe('unavailable');
    server.handler = () => ({ result: secretInput });
    expect(await ctx.connect('openai')).toEqual(secretInput);
  });

  it('honours timeoutMs and an abort signal', async () => {
    server.handler = () => 'never';
    expect((await ctxFailure(ctx.connect('openai', { timeoutMs: 20 }))).code).toBe('timeout');
    const controller = new AbortController();
    const pending = ctx.connect('openai', { signal: controller.signal });
    controller.abort();
    expect((await ctxFailure(pending)).code).toBe('aborted');
  });

  it('uses the sandbox socket path by default', () => {
    expect(CTX_SOCKET_PATH).toBe('/run/grexal/ctx.sock');
  });
});

describe('JS ctx client, bundled as /opt/grexal/ctx.mjs', () => {
  let dir: string;
  let bundle: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grexal-ctx-bundle-'));
    bundle = join(dir, 'ctx.mjs');
    await build({
      entryPoints: [new URL('./ctx.ts', import.meta.url).pathname],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      logLevel: 'warning',
    });
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runAgent(
    source: string,
    env: Record<string, string>,
  ): Promise<{ code: number | null; stdout: string }> {
    const script = join(dir, `agent-${Math.random().toString(36).slice(2)}.mjs`);
    await writeFile(script, source.replace('CTX', JSON.stringify(bundle)));
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout };
  }

  it('carries no validator and lets an idle agent exit by itself', async () => {
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(bundle, 'utf8')).not.toContain('zod');
    server.handler = () => ({ result: secretInput });
    // The server keeps the connection open; the agent must still exit once its calls are done.
    const { code, stdout } = await runAgent(
      "import { ctx } from CTX;\nconst r = await ctx.connect('openai');\nconsole.log(JSON.stringify(r));",
      { GREXAL_CTX_SOCKET: server.path },
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(secretInput);
    expect(server.sockets.size).toBeLessThanOrEqual(1);
  });

  it('keeps the agent alive while a call is pending', async () => {
    server.handler = () => ({ result: { outcome: 'completed' }, delayMs: 200 });
    const { code, stdout } = await runAgent(
      "import { ctx } from CTX;\nctx.requestTakeover({ reason: 'x' }).then((r) => console.log(r.outcome));",
      { GREXAL_CTX_SOCKET: server.path },
    );
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('completed');
  });

  it('reports `unavailable` outside a sandbox', async () => {
    const { code, stdout } = await runAgent(
      "import { ctx } from CTX;\ntry { await ctx.connect('openai'); } catch (e) { console.log(e.name, e.code); }",
      { GREXAL_CTX_SOCKET: join(dir, 'missing.sock') },
    );
    expect(code).toBe(0);
    expect(stdout.trim()).toBe('CtxError unavailable');
  });
});

describe('ctx.waitForBrowser', () => {
  /** A DevTools /json/version that answers 503 (the relay cut, as in a takeover) `refusals` times first. */
  async function devtools(refusals: number) {
    const { createServer } = await import('node:http');
    let asked = 0;
    const http = createServer((req, res) => {
      asked++;
      if (req.url !== '/json/version' || asked <= refusals) return void res.writeHead(503).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ Browser: 'Chrome/1', webSocketDebuggerUrl: 'ws://127.0.0.1/devtools/browser/x' }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const { port } = http.address() as { port: number };
    process.env['GREXAL_CDP_URL'] = `http://127.0.0.1:${port}`;
    return { asked: () => asked, close: () => new Promise((resolve) => http.close(resolve)) };
  }

  afterAll(() => {
    delete process.env['GREXAL_CDP_URL'];
  });

  it('polls until the browser answers again, then returns /json/version', async () => {
    const server = await devtools(3);
    const version = await ctx.waitForBrowser({ timeoutMs: 10_000 });
    expect(version.webSocketDebuggerUrl).toBe('ws://127.0.0.1/devtools/browser/x');
    expect(server.asked()).toBe(4);
    await server.close();
  });

  it('gives up with `timeout`, and says `unavailable` without GREXAL_CDP_URL', async () => {
    const server = await devtools(Number.POSITIVE_INFINITY);
    expect((await ctxFailure(ctx.waitForBrowser({ timeoutMs: 300 }))).code).toBe('timeout');
    expect(server.asked()).toBeGreaterThan(1);
    await server.close();
    delete process.env['GREXAL_CDP_URL'];
    expect((await ctxFailure(ctx.waitForBrowser())).code).toBe('unavailable');
  });
});
