import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { HttpCredentialProvider, StaticCredentialProvider } from './credential-provider.ts';
import { Secret } from './secret.ts';

const REFRESH = new Secret('1//refresh-canary-http');
const ORCHESTRATOR_TOKEN = 'orchestrator-token-canary';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** A real HTTP server on loopback port 0 that records requests and answers with `handler`. */
async function orchestrator(
  handler: (req: IncomingMessage, body: string, res: ServerResponse) => void,
): Promise<string> {
  server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    handler(req, body, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/refresh`;
}

async function failure(promise: Promise<unknown>): Promise<GrexalError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GrexalError);
    return error as GrexalError;
  }
  throw new Error('expected a failure');
}

describe('HttpCredentialProvider', () => {
  it('POSTs the refresh token with the bearer token and returns the validated answer', async () => {
    const seen: { auth?: string; type?: string; method?: string; body?: unknown }[] = [];
    const url = await orchestrator((req, body, res) => {
      seen.push({
        auth: req.headers.authorization,
        type: req.headers['content-type'],
        method: req.method,
        body: JSON.parse(body),
      });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ access_token: 'ya29.new-token-1', expires_at: 1_900_000_000_000, extra: 'ignored' }),
      );
    });
    const provider = new HttpCredentialProvider({ url, token: ORCHESTRATOR_TOKEN });
    const token = await provider.refresh('gmail', { refreshToken: REFRESH, scope: 'gmail.readonly' });
    expect(token).toEqual({ access_token: 'ya29.new-token-1', expires_at: 1_900_000_000_000 });
    expect(seen).toEqual([
      {
        auth: `Bearer ${ORCHESTRATOR_TOKEN}`,
        type: 'application/json',
        method: 'POST',
        body: { connection_id: 'gmail', refresh_token: REFRESH.reveal(), scope: 'gmail.readonly' },
      },
    ]);
  });

  it('fails with the status, never the body, on an error answer', async () => {
    const url = await orchestrator((_req, body, res) => {
      res.statusCode = 401;
      res.end(`invalid_grant for ${body}`);
    });
    const error = await failure(
      new HttpCredentialProvider({ url, token: ORCHESTRATOR_TOKEN }).refresh('gmail', {
        refreshToken: REFRESH,
        scope: null,
      }),
    );
    expect(error.code).toBe('E_CREDENTIAL_REFRESH_FAILED');
    expect(error.message).toContain('HTTP 401');
    expect(JSON.stringify(error)).not.toMatch(/canary/);
    expect(error.message).not.toMatch(/canary/);
  });

  it('refuses an answer that is not a token, naming where without quoting it', async () => {
    const url = await orchestrator((_req, _body, res) => {
      res.end(JSON.stringify({ access_token: 'canary', expires_at: 'soon' }));
    });
    const error = await failure(
      new HttpCredentialProvider({ url, token: ORCHESTRATOR_TOKEN }).refresh('gmail', {
        refreshToken: REFRESH,
        scope: null,
      }),
    );
    expect(error.message).toContain('access_token');
    expect(error.message).toContain('expires_at');
    expect(error.message).not.toMatch(/canary|soon/);
  });

  it('gives up after its timeout', async () => {
    const url = await orchestrator(() => {
      // Never answers.
    });
    const provider = new HttpCredentialProvider({ url, token: ORCHESTRATOR_TOKEN, timeoutMs: 50 });
    const error = await failure(provider.refresh('gmail', { refreshToken: REFRESH, scope: null }));
    expect(error.code).toBe('E_CREDENTIAL_REFRESH_FAILED');
    expect(error.message).toContain('no answer within 50 ms');
  });

  it('stops when the caller aborts', async () => {
    const url = await orchestrator(() => {});
    const controller = new AbortController();
    const pending = new HttpCredentialProvider({ url, token: ORCHESTRATOR_TOKEN }).refresh(
      'gmail',
      { refreshToken: REFRESH, scope: null },
      controller.signal,
    );
    controller.abort();
    expect((await failure(pending)).code).toBe('E_ABORTED');
  });

  it('refuses a non-http URL and never prints its token', () => {
    expect(() => new HttpCredentialProvider({ url: 'file:///etc/passwd', token: 'x' })).toThrow(/http/);
    const provider = new HttpCredentialProvider({ url: 'http://127.0.0.1:1/', token: ORCHESTRATOR_TOKEN });
    expect(JSON.stringify(provider)).not.toContain('canary');
  });
});

describe('StaticCredentialProvider', () => {
  it('cannot refresh', async () => {
    const provider = new StaticCredentialProvider();
    expect(provider.canRefresh).toBe(false);
    expect((await failure(provider.refresh('gmail'))).code).toBe('E_CREDENTIAL_REFRESH_FAILED');
  });
});
