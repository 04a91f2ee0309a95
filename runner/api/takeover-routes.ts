/**
 * Mounts runner/takeover's framework-agnostic handlers on the API's server. The HTTP routes are
 * fastify routes that hand the raw request over in `onRequest`, before fastify reads the body
 * (the handlers read it themselves). The stream is a raw `upgrade` listener rather than an
 * @fastify/websocket route: the handlers check id, token and Origin before the handshake and answer
 * a refusal with a plain HTTP status, which a route that is already a WebSocket cannot do.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TakeoverHandlers } from '../takeover/index.ts';

const NOT_FOUND = JSON.stringify({
  error: { code: 'E_ROUTE_NOT_FOUND', message: 'No takeover route at this path.' },
});

export function mountTakeoverRoutes(app: FastifyInstance, handlers: TakeoverHandlers): void {
  const handOver = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.hijack();
    if (!handlers.handleRequest(request.raw, reply.raw)) {
      reply.raw.writeHead(404, { 'Content-Type': 'application/json; charset=utf-8' });
      reply.raw.end(NOT_FOUND);
    }
  };
  // The handlers answer in onRequest; a fastify route still needs a handler of its own.
  const unreachable = async (): Promise<void> => {};
  const route = { onRequest: handOver, handler: unreachable };
  app.get('/takeover/:takeoverId', route);
  app.get('/takeover/assets/:name', route);
  app.get('/v1/takeovers/:takeoverId/viewer', route);
  app.post('/v1/takeovers/:takeoverId/timing', route);
  app.post('/v1/takeovers/:takeoverId/complete', route);
  app.post('/v1/takeovers/:takeoverId/cancel', route);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (handlers.handleUpgrade(req, socket, head)) return;
    socket.on('error', () => {});
    socket.end(
      `HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(NOT_FOUND)}\r\n\r\n${NOT_FOUND}`,
    );
  });
  app.addHook('onClose', async () => handlers.close());
}
