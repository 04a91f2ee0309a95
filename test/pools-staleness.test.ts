/**
 * Warm pools on the real engine, staleness: an image rebuilt under a pool has its old entries
 * retired one at a time and never claimed. Setup: test/pools-fixture.ts.
 */
import { randomBytes } from 'node:crypto';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { docker, eventually, sandboxContainers } from './helpers.ts';
import { api, events, pool, runner, usePoolsFixture } from './pools-fixture.ts';

usePoolsFixture();

/** An image of this test's own, so that rebuilding it never touches the shared ones. */
async function buildTestImage(tag: string, label: string): Promise<string> {
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM grexal/agent\nLABEL grexal.test-stale=${label}\n`);
  context.finalize();
  const stream = await docker.buildImage(context as never, { t: tag });
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
  );
  const id = (await docker.getImage(tag).inspect()).Id;
  builtImages.push(id);
  return id;
}
const builtImages: string[] = [];

describe('an image rebuilt under a pool', () => {
  const tag = `grexal-test/pool-stale:${randomBytes(4).toString('hex')}`;
  afterAll(async () => {
    // Both builds: the first one is untagged by the second, not gone.
    for (const id of builtImages.reverse())
      await docker
        .getImage(id)
        .remove({ force: true })
        .catch(() => {});
  });

  it('retires the old entries one at a time, never claiming them', async () => {
    const oldId = await buildTestImage(tag, 'one');
    await api('PUT', '/v1/pools/stale', { image: tag, size: 2 });
    await eventually(async () => (await pool('stale')).ready === 2, 'the pool filled', 600);
    const newId = await buildTestImage(tag, 'two');
    expect(newId).not.toBe(oldId);
    let fewest = 2;
    await eventually(
      async () => {
        const status = await pool('stale');
        fewest = Math.min(fewest, status.ready + status.stale);
        const ids = (await sandboxContainers())
          .filter((c) => c.Labels['grexal.runner'] === runner.runtime.instanceId && c.State === 'running')
          .map((c) => c.ImageID);
        return (
          status.ready === 2 && status.stale === 0 && ids.length === 2 && ids.every((id) => id === newId)
        );
      },
      'the entries on the new image',
      1_200,
    );
    // Gradual: never more than one entry missing at a time.
    expect(fewest).toBeGreaterThanOrEqual(1);
    const run = await api('POST', '/v1/sandboxes', { image: tag, command: ['true'] });
    expect(run.body.warm).toBe(true);
    const [container] = await sandboxContainers(run.body.id);
    expect(container?.ImageID).toBe(newId);
    await events(run.body.id);
    expect((await api('DELETE', '/v1/pools/stale')).status).toBe(204);
  });
});
