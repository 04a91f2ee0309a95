import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPython } from '../testing/python.ts';
import { FakeCtxServer, type FakeRequest } from './fake-ctx-server.ts';

const PYTHON_PATH = new URL('../python', import.meta.url).pathname;
let server: FakeCtxServer;

beforeAll(async () => {
  server = await FakeCtxServer.start();
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

/** Runs a Python snippet with only the standard library and the grexal package on its path. */
async function python(
  source: string,
  socketPath = server.path,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { exit } = startPython(
    ['-I', '-c', `import sys; sys.path.insert(0, ${JSON.stringify(PYTHON_PATH)})\n${source}`],
    { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', GREXAL_CTX_SOCKET: socketPath, ...env } },
  );
  return exit;
}

// Each test starts a python3 process: generous limits, never asserted on.
describe('Python ctx client', { timeout: 30_000 }, () => {
  it('connects through `from grexal import ctx`', async () => {
    server.handler = () => ({ result: { mode: 'secret_input', fields: { api_key: 'sk-test-123456' } } });
    const run = await python("import json\nfrom grexal import ctx\nprint(json.dumps(ctx.connect('openai')))");
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ mode: 'secret_input', fields: { api_key: 'sk-test-123456' } });
    expect(server.requests).toEqual([
      { id: expect.any(Number), method: 'connect', params: { connectionId: 'openai' } },
    ]);
  });

  it('sends wait: false only when the caller opts out of waiting for a broken connection', async () => {
    server.handler = () => ({ result: { mode: 'browser_login' } });
    const run = await python(
      "from grexal import ctx\nctx.connect('gmail', wait=False)\nctx.connect('gmail')",
    );
    expect(run.stderr).toBe('');
    expect(server.requests.map((r) => r.params)).toEqual([
      { connectionId: 'gmail', wait: false },
      { connectionId: 'gmail' },
    ]);
  });

  it('raises CtxError with the protocol code', async () => {
    server.handler = () => ({
      error: { code: 'not_connected', message: 'Connection slack is optional and not connected.' },
    });
    const run = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.connect("slack")\nexcept CtxError as e:\n    print(e.code, "|", e)',
    );
    expect(run.stdout.trim()).toBe('not_connected | Connection slack is optional and not connected.');
  });

  it('sends request_takeover with only the given params', async () => {
    server.handler = () => ({ result: { outcome: 'completed' } });
    const run = await python(
      "from grexal import ctx\nprint(ctx.request_takeover(reason='Log in', connection_id='linkedin', timeout_ms=60000)['outcome'])\nprint(ctx.request_takeover(reason='Captcha')['outcome'])\nprint(ctx.request_takeover(reason='Log in', until={'url': 'https://x.test/home*', 'cookie': 'sid'})['outcome'])",
    );
    expect(run.stdout.split('\n').filter(Boolean)).toEqual(['completed', 'completed', 'completed']);
    expect(server.requests.map((r: FakeRequest) => r.params)).toEqual([
      { reason: 'Log in', connectionId: 'linkedin', timeoutMs: 60000 },
      { reason: 'Captcha' },
      { reason: 'Log in', until: { url: 'https://x.test/home*', cookie: 'sid' } },
    ]);
  });

  it('is safe to call from many threads at once', async () => {
    server.handler = (r) => ({
      result: { mode: 'secret_input', fields: { id: (r.params as { connectionId: string }).connectionId } },
      delayMs: 5,
    });
    const run = await python(
      [
        'from concurrent.futures import ThreadPoolExecutor',
        'from grexal import ctx',
        'ids = ["c%d" % i for i in range(40)]',
        'with ThreadPoolExecutor(8) as pool:',
        '    got = list(pool.map(lambda i: ctx.connect(i)["fields"]["id"], ids))',
        'print(got == ids)',
      ].join('\n'),
    );
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('True');
  });

  it('reports `unavailable` outside a sandbox', async () => {
    const missing = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.connect("openai")\nexcept CtxError as e:\n    print(e.code)',
      join(server.dir, 'missing.sock'),
    );
    expect(missing.stdout.trim()).toBe('unavailable');
  });

  it('reports `timeout` when no answer comes', async () => {
    server.handler = () => 'never';
    const slow = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.connect("openai", timeout=0.05)\nexcept CtxError as e:\n    print(e.code)',
    );
    expect(slow.stdout.trim()).toBe('timeout');
  });

  it('reports `unavailable` when the runner hangs up', async () => {
    server.handler = () => 'hang-up';
    const run = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.connect("openai")\nexcept CtxError as e:\n    print(e.code)',
    );
    expect(run.stdout.trim()).toBe('unavailable');
  });

  it('wait_for_browser polls GREXAL_CDP_URL until /json/version answers, bounded', async () => {
    const { createServer } = await import('node:http');
    let asked = 0;
    let refusals = 2;
    const http = createServer((_req, res) => {
      asked++;
      if (asked <= refusals) return void res.writeHead(503).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ Browser: 'Chrome/1', webSocketDebuggerUrl: 'ws://127.0.0.1/devtools/browser/x' }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    const ok = await python(
      'from grexal import ctx\nprint(ctx.wait_for_browser(timeout=10)["webSocketDebuggerUrl"])',
      server.path,
      { GREXAL_CDP_URL: url },
    );
    expect(ok.stdout.trim()).toBe('ws://127.0.0.1/devtools/browser/x');
    expect(asked).toBe(3);
    refusals = Number.POSITIVE_INFINITY;
    const late = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.wait_for_browser(timeout=0.3)\nexcept CtxError as e:\n    print(e.code)',
      server.path,
      { GREXAL_CDP_URL: url },
    );
    expect(late.stdout.trim()).toBe('timeout');
    const none = await python(
      'from grexal import ctx, CtxError\ntry:\n    ctx.wait_for_browser()\nexcept CtxError as e:\n    print(e.code)',
    );
    expect(none.stdout.trim()).toBe('unavailable');
    await new Promise((resolve) => http.close(resolve));
  });
});
