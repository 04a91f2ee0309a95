/**
 * The errors fastify's routes never see, in the API's envelope like every other: requests Node's
 * HTTP parser refuses (the `clientError` event: malformed Content-Length, headers over Node's
 * limit, timeouts), URLs fastify's router cannot decode, over-long URLs, and methods a path does
 * not accept (405 with `Allow`, where fastify says 404).
 */
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, GrexalError } from '../errors.ts';

/** Longest request target (path and query). Node's own 16 KiB cap on the head still applies. */
export const MAX_URL_BYTES = 8192;

/** What Node's parser (llhttp) refused, for the message. */
const PARSE_ERRORS: Record<string, string> = {
  HPE_INVALID_CONTENT_LENGTH: 'the Content-Length header is not a number',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'Content-Length and Transfer-Encoding: chunked together',
  HPE_INVALID_TRANSFER_ENCODING: 'the Transfer-Encoding header is malformed',
  HPE_INVALID_CHUNK_SIZE: 'a chunk size is malformed',
  HPE_INVALID_METHOD: 'the method is not an HTTP method',
  HPE_INVALID_URL: 'the request target is malformed',
  HPE_INVALID_VERSION: 'the HTTP version is malformed',
  HPE_INVALID_HEADER_TOKEN: 'a header name or value has a character HTTP does not allow',
  HPE_LF_EXPECTED: 'a line does not end with CRLF',
  HPE_CR_EXPECTED: 'a line does not end with CRLF',
  HPE_INVALID_CONSTANT: 'the request line is malformed',
};

/** The envelope for a request Node's parser refused; undefined when nothing can be answered. */
export function clientErrorAnswer(error: {
  code?: string;
  rawPacket?: unknown;
  bytesParsed?: number;
}): GrexalError | undefined {
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new GrexalError(
        'E_REQUEST_TIMEOUT',
        'The request did not arrive in time. Send the whole request without pausing.',
      );
    case 'HPE_HEADER_OVERFLOW': {
      // The chunk that overflowed starts with a request line that had not ended where the parser
      // stopped: the URL alone is over the limit.
      const raw = Buffer.isBuffer(error.rawPacket) ? error.rawPacket.toString('latin1') : '';
      const lineEnd = raw.indexOf('\r\n');
      const stoppedAt = error.bytesParsed ?? raw.length;
      if (/^[A-Z]+ /.test(raw) && (lineEnd === -1 || lineEnd >= stoppedAt)) return urlTooLong();
      return new GrexalError(
        'E_HEADERS_TOO_LARGE',
        'The request line and headers are over 16 KiB together, the server limit. Send fewer or smaller headers (and a shorter URL).',
      );
    }
  }
  const what = PARSE_ERRORS[error.code ?? ''] ?? `the parser refused it (${error.code ?? 'unknown'})`;
  return new GrexalError(
    'E_BAD_REQUEST',
    `The HTTP request is malformed: ${what}. Send a valid HTTP/1.1 request.`,
  );
}

export function urlTooLong(): GrexalError {
  return new GrexalError(
    'E_URL_TOO_LONG',
    `The URL is over ${MAX_URL_BYTES} bytes, this runner's limit. Send data in a POST body, not in the URL.`,
  );
}

function rawResponse(error: GrexalError): string {
  const body = JSON.stringify({ error: error.toJSON() });
  const reason = STATUS_TEXT[error.status] ?? 'Error';
  return `HTTP/1.1 ${error.status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/** fastify's `clientErrorHandler`: the answer in the envelope, then the connection closed. */
export function clientErrorHandler(onError: (code: ErrorCode) => void) {
  return (
    error: Error & { code?: string; rawPacket?: unknown; bytesParsed?: number },
    socket: Duplex,
  ): void => {
    // As Node's own handler: never write into a response already under way on this connection.
    const busy = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    const answer = socket.destroyed || busy ? undefined : clientErrorAnswer(error);
    if (!answer || !socket.writable) {
      socket.destroy();
      return;
    }
    onError(answer.code);
    socket.end(rawResponse(answer), () => socket.destroy());
  };
}

/** fastify's `frameworkErrors`: what its router refuses before any route or hook. */
export function frameworkErrorHandler(onError: (code: ErrorCode) => void) {
  return (error: Error & { code?: string }, _request: FastifyRequest, reply: FastifyReply): void => {
    const e =
      error.code === 'FST_ERR_BAD_URL'
        ? new GrexalError(
            'E_BAD_REQUEST',
            'The URL path has a malformed percent-encoding. Encode it with encodeURIComponent.',
          )
        : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? urlTooLong()
          : new GrexalError(
              'E_INTERNAL',
              `Unexpected failure routing the request (${error.code ?? error.message}).`,
            );
    onError(e.code);
    void reply.code(e.status).send({ error: e.toJSON() });
  };
}

/**
 * The methods each route pattern accepts, from fastify's onRoute hook, so that a 404 for a path
 * that exists under another method becomes a 405 naming the methods that do.
 */
export class MethodIndex {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];

  /** Call before the routes are added. */
  watch(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const source = route.url
        .split('/')
        .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      const pattern = new RegExp(`^${source}$`);
      const existing = this.routes.find((r) => r.pattern.source === pattern.source);
      if (existing) for (const m of methods) existing.methods.add(m);
      else this.routes.push({ pattern, methods: new Set(methods) });
    });
  }

  /** The methods `path` accepts, sorted; empty when no route has that path. */
  allowed(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes)
      if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    return [...methods].sort();
  }
}
