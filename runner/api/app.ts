/**
 * `buildApi`: the orchestrator's HTTP API on fastify, not yet listening (tests use `inject()`;
 * `serve` listens). Errors, auth, logging and shutdown live here; routes in their own files.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import type { Runner } from '../sandbox/index.ts';
import { createTakeoverHandlers, type TakeoverBroker, type TakeoverHttpOptions } from '../takeover/index.ts';
import { bearerCheck, needsBearer } from './auth.ts';
import {
  clientErrorHandler,
  frameworkErrorHandler,
  MAX_URL_BYTES,
  MethodIndex,
  urlTooLong,
} from './http-edge.ts';
import { toApiError } from './http-errors.ts';
import type { JournalLimits } from './journal.ts';
import { createMetrics } from './metrics.ts';
import { buildOpenApi } from './openapi.ts';
import { mountPoolRoutes } from './pool-routes.ts';
import { Readiness, type ReadinessOptions } from './readiness.ts';
import { type RegistryOptions, SandboxRegistry } from './registry.ts';
import { mountSandboxRoutes } from './sandbox-routes.ts';
import type { SseOptions } from './sse.ts';
import { mountTakeoverRoutes } from './takeover-routes.ts';

export interface BuildApiOptions extends RegistryOptions {
  runner: Runner;
  /** The bearer token for /v1/*. Default: none, and /v1/* is open (loopback only; `serve` enforces it). */
  token?: string;
  /** Caps `limits.timeoutMs` and is the default when a request gives none. Default: no cap (1 h default). */
  maxRunTimeMs?: number;
  /** Largest request body. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Where requests are logged (path only, never bodies). Default: no logs. */
  logger?: Logger;
  /** Options of the takeover routes; the broker defaults to the runner's own. */
  takeover?: Omit<TakeoverHttpOptions, 'broker'> & { broker?: TakeoverBroker };
  journal?: JournalLimits;
  sse?: SseOptions;
  /** What `/readyz` checks: the images sandboxes start from, and how long an answer is reused. */
  readiness?: ReadinessOptions;
}

const VERSION = '0.1.0';

/**
 * The API, ready but not listening. `app.close()` refuses new sandboxes, destroys the ones this API
 * created, and closes the server; closing the runner stays with whoever started it.
 */
export async function buildApi(options: BuildApiOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimitBytes ?? 1024 * 1024;
  const registry = new SandboxRegistry(options);
  const metrics = createMetrics(
    () => registry.countByState(),
    () => options.runner.pools.list(),
  );
  options.runner.pools.observe(metrics);
  // --max-sandboxes bounds what the runner holds, pool entries included (docs/pools.md).
  options.runner.pools.limit({ max: registry.maxSandboxes, live: () => registry.liveCount });
  const countError = (code: string): void => metrics.apiError(code);
  const app: FastifyInstance = Fastify({
    bodyLimit,
    // Request lines are logged below, path only: takeover tokens travel in query strings.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: false,
    // pino's Logger is a FastifyBaseLogger; the cast keeps FastifyInstance's default type parameters.
    loggerInstance: options.logger?.child({ component: 'api' }) as FastifyBaseLogger | undefined,
    // What Node's parser and fastify's router refuse answers in the envelope too.
    clientErrorHandler: clientErrorHandler(countError),
    frameworkErrors: frameworkErrorHandler(countError),
  });
  const methods = new MethodIndex();
  methods.watch(app);
  // JSON only: fastify's default text/plain parser would let a string through to validation.
  app.removeContentTypeParser('text/plain');
  // Many HTTP clients send `Content-Type: application/json` on every request, bodiless GET and
  // DELETE included; only a POST must have a body.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text === '' && request.method !== 'POST') done(null, undefined);
    else parseJson(request, text, done);
  });
  const readiness = new Readiness(options.runner.runtime, options.readiness);
  let closing = false;

  const check = options.token ? bearerCheck(options.token) : undefined;
  app.addHook('onRequest', async (request) => {
    if (Buffer.byteLength(request.url) > MAX_URL_BYTES) throw urlTooLong();
    if (check && needsBearer(pathOf(request.url))) check(request.headers.authorization);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        path: pathOf(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });
  app.setErrorHandler(async (error, request, reply) => {
    const e = toApiError(error, bodyLimit);
    countError(e.code);
    if (e.status >= 500) request.log.error({ err: e, path: pathOf(request.url) }, 'request failed');
    if (e.code === 'E_TOO_MANY_SANDBOXES') void reply.header('Retry-After', String(registry.retryAfter));
    if (e.code === 'E_UNAUTHORIZED') void reply.header('WWW-Authenticate', 'Bearer');
    return reply.code(e.status).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler(async (request, reply) => {
    const path = pathOf(request.url);
    const allowed = methods.allowed(path);
    if (allowed.length > 0) {
      countError('E_METHOD_NOT_ALLOWED');
      const message = `${request.method} is not allowed on ${path}; it accepts ${allowed.join(', ')}.`;
      void reply.header('Allow', allowed.join(', '));
      return reply.code(405).send({ error: { code: 'E_METHOD_NOT_ALLOWED', message } });
    }
    countError('E_ROUTE_NOT_FOUND');
    const message = `No route ${request.method} ${path}. See GET /openapi.json for the routes.`;
    return reply.code(404).send({ error: { code: 'E_ROUTE_NOT_FOUND', message } });
  });

  const openapi = buildOpenApi(VERSION);
  // Liveness: the process answers. Whether it can start sandboxes is /readyz's question.
  app.get('/healthz', async () => ({ ok: true, closing, live: registry.liveCount }));
  app.get('/readyz', async (_request, reply) => {
    const answer = closing
      ? new GrexalError('E_NOT_READY', 'Not ready: the runner is shutting down.', {
          details: [{ code: 'E_RUNNER_CLOSING', path: 'runner', message: 'The runner is shutting down.' }],
        })
      : await readiness.check();
    if (!(answer instanceof GrexalError)) return answer;
    countError(answer.code);
    return reply.code(answer.status).send({ error: answer.toJSON() });
  });
  app.get('/openapi.json', async () => openapi);
  app.get('/metrics', async (_request, reply) => {
    void reply.header('Content-Type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  mountSandboxRoutes(app, {
    runner: options.runner,
    registry,
    metrics,
    maxRunTimeMs: options.maxRunTimeMs,
    journal: options.journal,
    sse: options.sse,
    closing: () => closing,
  });
  mountPoolRoutes(app, { runner: options.runner, closing: () => closing });
  const takeover = options.takeover ?? {};
  mountTakeoverRoutes(
    app,
    createTakeoverHandlers({
      ...takeover,
      broker: takeover.broker ?? options.runner.takeovers,
      onViewerTiming: (timing) => {
        metrics.viewerFirstFrame(timing.firstFrameMs / 1000);
        takeover.onViewerTiming?.(timing);
      },
      ...(takeover.log || !options.logger ? {} : { log: options.logger.child({ component: 'takeover' }) }),
    }),
  );
  // app.close() first refuses new sandboxes, then destroys the live ones (waiting for starts
  // under way), so their event streams end with `exit` before the server stops.
  app.addHook('preClose', async () => {
    closing = true;
    // The pools drain alongside: no refill starts entries while the sandboxes go.
    await Promise.allSettled([
      options.runner.pools.close(),
      ...registry.live().map((record) => record.destroy()),
    ]);
  });
  await app.ready();
  return app;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
