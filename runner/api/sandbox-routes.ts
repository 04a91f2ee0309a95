/** The /v1/sandboxes routes of DESIGN §4. */
import type { FastifyInstance } from 'fastify';
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { policyToJson } from '../network/index.ts';
import { DEFAULT_TIMEOUT_MS, type LimitsInput, type Runner } from '../sandbox/index.ts';
import { parseOrThrow } from '../validation.ts';
import type { JournalLimits } from './journal.ts';
import type { ApiMetrics } from './metrics.ts';
import { Preflight } from './preflight.ts';
import type { CreatedSandbox, CredentialChanged, SandboxView } from './protocol.ts';
import type { SandboxRegistry } from './registry.ts';
import { SandboxRecord } from './sandbox-record.ts';
import { createSandboxBodySchema } from './schemas.ts';
import { parseLastEventId, type SseOptions, streamJournal } from './sse.ts';

export interface SandboxRoutesContext {
  runner: Runner;
  registry: SandboxRegistry;
  metrics: ApiMetrics;
  maxRunTimeMs?: number;
  journal?: JournalLimits;
  sse?: SseOptions;
  /** True once shutdown began: creations are refused. */
  closing(): boolean;
}

export function mountSandboxRoutes(app: FastifyInstance, ctx: SandboxRoutesContext): void {
  const preflight = new Preflight(ctx.runner.runtime);
  const lookup = (id: string): SandboxRecord => {
    const record = ctx.registry.get(id);
    if (record) return record;
    if (ctx.runner.ids.origin(id) === 'earlier') {
      throw new GrexalError(
        'E_SANDBOX_GONE',
        `Sandbox ${id} belonged to an earlier runner instance on this state directory, which has stopped; the sandbox is gone with it. Create a new one.`,
      );
    }
    throw new GrexalError(
      'E_SANDBOX_NOT_FOUND',
      `No sandbox ${JSON.stringify(id.slice(0, 80))} on this runner. Use the id that POST /v1/sandboxes returned; ended sandboxes are forgotten after a while.`,
    );
  };

  app.post('/v1/sandboxes', async (request, reply) => {
    if (ctx.closing())
      throw new GrexalError(
        'E_RUNNER_CLOSING',
        'The runner is shutting down. Send the request to another runner.',
      );
    const body = parseOrThrow(createSandboxBodySchema, request.body, 'sandbox request');
    const limits = capRunTime(body.limits, ctx.maxRunTimeMs);
    const release = ctx.registry.reserve();
    const claimStarted = performance.now();
    try {
      // The raw manifest and credentials: runner/inject validates and parses them itself. The
      // image check is for cold creates only: a pool entry's image is its pool's to check.
      const { metadata: _metadata, ...raw } = request.body as Record<string, unknown>;
      const sandbox = await ctx.runner.create(
        { ...raw, ...(limits ? { limits } : {}) },
        { beforeCold: () => preflight.check(body.image, body.runtime) },
      );
      ctx.metrics.claimed(sandbox.warm, (performance.now() - claimStarted) / 1000);
      const record = new SandboxRecord(sandbox, body.metadata ?? {}, ctx.metrics, ctx.journal);
      ctx.registry.add(record);
      // Its place under the cap frees once it ends: a pool held back by the cap may refill then.
      void record.ended.then(() => ctx.runner.pools.wake());
      void record.start();
      request.log.info({ sandboxId: sandbox.id, image: body.image, warm: sandbox.warm }, 'sandbox created');
      const created: CreatedSandbox = { id: sandbox.id, state: record.state, warm: sandbox.warm };
      return reply.code(201).send(created);
    } finally {
      release();
    }
  });

  app.get<{ Params: { id: string } }>('/v1/sandboxes/:id', async (request): Promise<SandboxView> => {
    return lookup(request.params.id).view();
  });

  app.get<{ Params: { id: string }; Querystring: { lastEventId?: string } }>(
    '/v1/sandboxes/:id/events',
    // A HEAD would hold a bodiless stream open until the sandbox ends.
    { exposeHeadRoute: false },
    async (request, reply) => {
      const record = lookup(request.params.id);
      // EventSource sends Last-Event-ID on reconnects; `?lastEventId=` serves clients that cannot set headers.
      const lastEventId =
        parseLastEventId(request.headers['last-event-id']) ?? parseLastEventId(request.query.lastEventId);
      reply.hijack();
      await streamJournal(reply.raw, record.journal, lastEventId, ctx.sse);
      request.log.info({ sandboxId: record.id, lastEventId }, 'event stream closed');
    },
  );

  mountCredentialRoutes(app, lookup);
  // A new policy for the sandbox's next connections; open ones keep going. Validated first.
  app.patch<{ Params: { id: string } }>('/v1/sandboxes/:id/network', async (request) => {
    const record = lookup(request.params.id);
    const policy = await record.sandbox.setNetworkPolicy(request.body);
    request.log.info({ sandboxId: record.id, network: policyToJson(policy) }, 'network policy changed');
    return { network: policyToJson(policy) };
  });

  app.delete<{ Params: { id: string } }>('/v1/sandboxes/:id', async (request, reply) => {
    const record = lookup(request.params.id);
    await record.destroy();
    return reply.code(204).send();
  });
}

type Params = { id: string; connectionId: string };

const ended = (id: string): GrexalError =>
  new GrexalError(
    'E_SANDBOX_ENDED',
    `Sandbox ${id} has ended; its connections can no longer change. Create a new sandbox with the new credential.`,
  );

/** PUT and DELETE of one connection's credential on a running sandbox (docs/api.md). */
function mountCredentialRoutes(app: FastifyInstance, lookup: (id: string) => SandboxRecord): void {
  const path = '/v1/sandboxes/:id/credentials/:connectionId';
  app.put<{ Params: Params }>(path, async (request): Promise<CredentialChanged> => {
    const record = lookup(request.params.id);
    if (!record.live) throw ended(record.id);
    const { connectionId } = request.params;
    const { restored } = await record.sandbox.updateCredential(connectionId, request.body);
    request.log.info({ sandboxId: record.id, connectionId, restored }, 'credential changed');
    return { connectionId, outcome: restored ? 'restored' : 'updated' };
  });
  app.delete<{ Params: Params }>(path, async (request, reply) => {
    const record = lookup(request.params.id);
    if (!record.live) throw ended(record.id);
    await record.sandbox.removeCredential(request.params.connectionId);
    request.log.info(
      { sandboxId: record.id, connectionId: request.params.connectionId },
      'credential removed',
    );
    return reply.code(204).send();
  });
}

/** A request may ask for less run time than the runner allows, never more. */
function capRunTime(
  limits: LimitsInput | undefined,
  maxRunTimeMs: number | undefined,
): LimitsInput | undefined {
  if (maxRunTimeMs === undefined) return limits;
  const asked = limits?.timeoutMs;
  if (asked === undefined) return { ...limits, timeoutMs: Math.min(DEFAULT_TIMEOUT_MS, maxRunTimeMs) };
  if (asked <= maxRunTimeMs) return limits;
  const problem: Problem = {
    code: 'E_LIMIT_INVALID',
    path: 'limits.timeoutMs',
    message: `${asked} ms is over this runner's maximum run time of ${maxRunTimeMs} ms.`,
    fix: `Give at most ${maxRunTimeMs}, or leave it out to get the maximum.`,
  };
  throw new ValidationError([problem], 'sandbox request');
}
