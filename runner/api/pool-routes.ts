/** The /v1/pools routes: warm pools made, read and drained at run time (docs/pools.md). */
import type { FastifyInstance } from 'fastify';
import { GrexalError } from '../errors.ts';
import { type PoolStatus, parsePoolSpec } from '../pool/index.ts';
import type { Runner } from '../sandbox/index.ts';

export interface PoolRoutesContext {
  runner: Runner;
  closing(): boolean;
}

export function mountPoolRoutes(app: FastifyInstance, ctx: PoolRoutesContext): void {
  const notFound = (name: string) =>
    new GrexalError(
      'E_POOL_NOT_FOUND',
      `No pool ${JSON.stringify(name.slice(0, 80))} on this runner. PUT /v1/pools/${encodeURIComponent(name.slice(0, 63))} makes one; GET /v1/pools lists them.`,
    );

  app.get('/v1/pools', async (): Promise<{ pools: PoolStatus[] }> => ({ pools: ctx.runner.pools.list() }));

  // Makes the pool or replaces it (the old one's entries are destroyed); validated first.
  app.put<{ Params: { name: string } }>('/v1/pools/:name', async (request, reply) => {
    if (ctx.closing())
      throw new GrexalError(
        'E_RUNNER_CLOSING',
        'The runner is shutting down. Send the request to another runner.',
      );
    const spec = parsePoolSpec(request.params.name, request.body ?? {});
    const replaced = ctx.runner.pools.get(spec.name) !== undefined;
    const status = await ctx.runner.setPool(spec);
    request.log.info({ pool: spec.name, image: spec.image, size: spec.size }, 'pool set');
    return reply.code(replaced ? 200 : 201).send(status);
  });

  app.get<{ Params: { name: string } }>('/v1/pools/:name', async (request): Promise<PoolStatus> => {
    const status = ctx.runner.pools.get(request.params.name);
    if (!status) throw notFound(request.params.name);
    return status;
  });

  // Answers once every entry of the pool is gone.
  app.delete<{ Params: { name: string } }>('/v1/pools/:name', async (request, reply) => {
    if (!(await ctx.runner.pools.delete(request.params.name))) throw notFound(request.params.name);
    return reply.code(204).send();
  });
}
