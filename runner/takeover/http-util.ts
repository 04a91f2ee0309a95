/** Small HTTP pieces for the takeover routes: headers, error bodies, Origin check, body reading. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GrexalError } from '../errors.ts';

/** On every takeover response: nothing cached, no Referer carrying the token anywhere, no framing. */
export const BASE_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const SAFE_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/**
 * Scripts and styles from this runner only (and the page's one inline boot script, by its hash);
 * the WebSocket back to this runner only.
 */
export function contentSecurityPolicy(host: string | undefined, scriptHash?: string): string {
  // 'self' covers ws: on the same host in CSP 3; the explicit sources help older browsers.
  const ws = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    `script-src 'self'${scriptHash ? ` ${scriptHash}` : ''}`,
    "style-src 'self'",
    "img-src 'self' data: blob:",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function errorBody(error: GrexalError): string {
  return JSON.stringify({ error: { code: error.code, message: error.message } });
}

export function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...BASE_HEADERS, 'Content-Type': 'application/json; charset=utf-8' });
  res.end(body);
}

export function sendError(res: ServerResponse, error: GrexalError): void {
  sendJson(res, error.status, errorBody(error));
}

/** Answers a WebSocket upgrade with a plain HTTP error: no VNC byte has been or will be sent. */
export function refuseUpgrade(socket: Duplex, error: GrexalError): void {
  const body = errorBody(error);
  const head = [
    `HTTP/1.1 ${error.status} ${statusText(error.status)}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    410: 'Gone',
    499: 'Client Closed Request',
    503: 'Service Unavailable',
  };
  return texts[status] ?? 'Error';
}

/**
 * A browser always sends Origin on WebSocket and POST requests; another site's page must not
 * drive a takeover even if it learned a link. Requests without Origin come from non-browser
 * clients, which the token alone governs.
 */
export function checkOrigin(req: IncomingMessage, allowedOrigins: readonly string[]): void {
  const origin = req.headers.origin;
  if (origin === undefined || allowedOrigins.includes(origin)) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host === undefined || host !== req.headers.host) {
    throw new GrexalError(
      'E_TAKEOVER_ORIGIN',
      `Requests from ${origin.slice(0, 100)} are not allowed. Open the takeover link itself, or add that origin to allowedOrigins.`,
    );
  }
}

/** Reads a small body; a takeover action's body is at most `{"token":"…"}`. */
export async function readSmallBody(req: IncomingMessage, maxBytes = 4096): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new GrexalError('E_VALIDATION', `The request body is over ${maxBytes} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The token from `?token=` or a JSON body `{ "token": "…" }`. */
export function tokenFromBody(body: string): string | undefined {
  if (!body.trim()) return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && 'token' in parsed && typeof parsed.token === 'string') {
      return parsed.token;
    }
  } catch {
    throw new GrexalError('E_VALIDATION', 'The request body is not JSON; send {"token":"…"} or nothing.');
  }
  return undefined;
}

/** Logs one answered takeover request (the path only: the query string holds the token). */
export type LogRequest = (req: IncomingMessage, url: URL, status: number) => void;
