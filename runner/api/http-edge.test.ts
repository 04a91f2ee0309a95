/**
 * Raw HTTP against a real listening server (port 0): every refusal, Node's parser's and
 * fastify's router's included, comes back as `{ error: { code, message } }` with the status its
 * code is registered with.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';
import { clientErrorAnswer } from './http-edge.ts';
import { type ApiServer, serve } from './serve.ts';
import { fakeRunner } from './testing/fake-runtime.ts';

const TOKEN = 'edge-token-0123456789';
let server: ApiServer;
let dispose: () => Promise<void>;

beforeAll(async () => {
  const fake = await fakeRunner();
  dispose = fake.dispose;
  server = await serve({ runner: fake.runner, token: TOKEN, port: 0, bodyLimitBytes: 4096 });
});

afterAll(async () => {
  await server?.close();
  await dispose?.();
});

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `request` as is and reads until the server closes or the answer is complete. */
function raw(request: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    let data = '';
    const finish = () => {
      const split = data.indexOf('\r\n\r\n');
      const head = data.slice(0, split).split('\r\n');
      const status = Number(head[0]?.split(' ')[1]);
      const headers = Object.fromEntries(
        head.slice(1).map((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
        }),
      );
      resolve({ status, headers, body: data.slice(split + 4) });
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const split = data.indexOf('\r\n\r\n');
      const length = /content-length: *(\d+)/i.exec(data.slice(0, split))?.[1];
      if (split !== -1 && length !== undefined && data.length >= split + 4 + Number(length)) {
        socket.destroy();
        finish();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => data && finish());
    socket.write(request);
  });
}

function expectEnvelope(answer: RawAnswer, code: ErrorCode): { code: string; message: string } {
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  const { error } = JSON.parse(answer.body) as { error: { code: string; message: string } };
  expect([answer.status, error.code]).toEqual([ERROR_CODES[code].status, code]);
  expect(error.message.length).toBeGreaterThan(10);
  return error;
}

const auth = `Authorization: Bearer ${TOKEN}\r\n`;

describe('the HTTP edge', () => {
  it('answers a malformed Content-Length with 400 E_BAD_REQUEST', async () => {
    const answer = await raw(
      `POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: abc\r\n\r\n{}`,
    );
    expect(expectEnvelope(answer, 'E_BAD_REQUEST').message).toContain('Content-Length');
    expect(answer.headers.connection).toBe('close');
  });

  it('answers Content-Length beside chunked, a bad method and garbage with 400 E_BAD_REQUEST', async () => {
    for (const request of [
      `POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      'BREW / HTTP/1.1\r\nHost: x\r\n\r\n',
      'hello there\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
    ]) {
      expectEnvelope(await raw(request), 'E_BAD_REQUEST');
    }
  });

  it('answers an over-long URL with 414 and over-large headers with 431', async () => {
    const long = `/v1/sandboxes/${'a'.repeat(10_000)}`;
    expectEnvelope(await raw(`GET ${long} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`), 'E_URL_TOO_LONG');
    const huge = `/v1/sandboxes/${'a'.repeat(20_000)}`;
    expectEnvelope(await raw(`GET ${huge} HTTP/1.1\r\nHost: x\r\n\r\n`), 'E_URL_TOO_LONG');
    const headers = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`;
    expectEnvelope(await raw(headers), 'E_HEADERS_TOO_LARGE');
  });

  it('answers a URL that cannot be decoded with 400 E_BAD_REQUEST', async () => {
    const answer = await raw(`GET /v1/sandboxes/%zz HTTP/1.1\r\nHost: x\r\n${auth}\r\n`);
    expect(expectEnvelope(answer, 'E_BAD_REQUEST').message).toContain('percent-encoding');
  });

  it('answers 404 for no route, and 405 with Allow for a route under another method', async () => {
    expectEnvelope(await raw('GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n'), 'E_ROUTE_NOT_FOUND');
    const put = await raw(`PUT /v1/sandboxes HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 0\r\n\r\n`);
    expect(expectEnvelope(put, 'E_METHOD_NOT_ALLOWED').message).toContain('POST');
    expect(put.headers.allow).toBe('POST');
    const del = await raw('DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expectEnvelope(del, 'E_METHOD_NOT_ALLOWED');
    expect(del.headers.allow).toBe('GET, HEAD');
    const onId = await raw(
      `POST /v1/sandboxes/sbx_1 HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 0\r\n\r\n`,
    );
    expect(onId.headers.allow).toBe('DELETE, GET, HEAD');
  });

  it('answers 413 for a body over the limit and 415 for a body that is not JSON', async () => {
    const body = JSON.stringify({ image: 'grexal/agent', env: { X: 'x'.repeat(8000) } });
    const big = await raw(
      `POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expectEnvelope(big, 'E_BODY_TOO_LARGE');
    const text = await raw(
      `POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi`,
    );
    expectEnvelope(text, 'E_CONTENT_TYPE_UNSUPPORTED');
  });

  it('still serves after all of the above', async () => {
    const answer = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).ok).toBe(true);
  });

  it('maps timeouts and resets', () => {
    expect(clientErrorAnswer({ code: 'ERR_HTTP_REQUEST_TIMEOUT' })?.code).toBe('E_REQUEST_TIMEOUT');
    expect(clientErrorAnswer({ code: 'ECONNRESET' })).toBeUndefined();
    expect(
      clientErrorAnswer({ code: 'HPE_HEADER_OVERFLOW', rawPacket: Buffer.from('Host: x\r\nX-A: aaaa') })
        ?.code,
    ).toBe('E_HEADERS_TOO_LARGE');
  });
});
