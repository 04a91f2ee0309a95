/** `grexal dev --watch-connections`: an edit of the connections file reaches the running agent. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, newStateDir, removeStateDir, startCli } from './helpers.ts';

const AGENT = `
import { ctx } from '/opt/grexal/ctx.mjs';
const first = (await ctx.connect('service')).fields.api_key;
console.log('started');
for (let i = 0; i < 600; i++) {
  const now = (await ctx.connect('service')).fields.api_key;
  if (now !== first) {
    console.log('rotated=' + now + ' hex=' + Buffer.from(now).toString('hex'));
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 100));
}
process.exit(3);
`;

let stateDir: string;
let dir: string;
beforeAll(async () => {
  stateDir = await newStateDir();
  dir = await mkdtemp(join(tmpdir(), 'grexal-dev-live-'));
  await writeFile(join(dir, 'agent.mjs'), AGENT);
  await writeFile(
    join(dir, 'Dockerfile'),
    'FROM grexal/agent\nCOPY agent.mjs /opt/agent/\nCMD ["node", "/opt/agent/agent.mjs"]\n',
  );
  await writeFile(
    join(dir, 'grexal.json'),
    JSON.stringify({ connections: [{ id: 'service', mode: 'secret_input', fields: [{ key: 'api_key' }] }] }),
  );
  await mkdir(join(dir, '.grexal'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await docker
    .getImage(`grexal-dev/${dir.split('/').pop()!.toLowerCase()}`)
    .remove({ force: true })
    .catch(() => {});
  await removeStateDir(stateDir);
});

describe('grexal dev --watch-connections', { timeout: 120_000 }, () => {
  it('rotates a connection in the running agent when its entry is saved, masked in the output', async () => {
    const before = `dev-live-old-${randomBytes(6).toString('hex')}`;
    const after = `dev-live-new-${randomBytes(6).toString('hex')}`;
    const path = join(dir, '.grexal', 'connections.json');
    await writeFile(path, JSON.stringify({ service: { fields: { api_key: before } } }));
    const run = startCli(['dev', dir, '--no-open', '--watch-connections'], { GREXAL_STATE_DIR: stateDir });
    await run.waitFor(/started/, 'stdout');
    await writeFile(path, JSON.stringify({ service: { fields: { api_key: after } } }));
    expect(await run.exited).toBe(0);
    expect(run.stdout).toContain(`rotated=*** hex=${Buffer.from(after).toString('hex')}`);
    expect(run.stderr).toContain('service: rotated in the running agent');
    expect(run.stdout + run.stderr).not.toContain(after);
    expect(run.stdout + run.stderr).not.toContain(before);
  });
});
