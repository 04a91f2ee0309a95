/**
 * Credential injection through `grexal run` against the real engine: env, files and ctx answers
 * from `--connections`, the output masked, and a missing required credential refused, named,
 * before anything exists. Setup: test/credentials-fixture.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL,
  CANARY,
  credentialsFor,
  manifest,
  stateDir,
  useCredentialsFixture,
} from './credentials-fixture.ts';
import { containersCreatedByPid, runCli, startCli } from './helpers.ts';

useCredentialsFixture();

describe('credential injection (grexal run)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grexal-cli-creds-'));
    await writeFile(join(dir, 'grexal.json'), JSON.stringify(manifest));
    await writeFile(join(dir, 'connections.json'), JSON.stringify(credentialsFor(CANARY)));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('injects env, files and ctx answers, and masks the output', async () => {
    const { code, stdout, stderr } = await runCli(
      [
        'run',
        '--manifest',
        join(dir, 'grexal.json'),
        '--connections',
        join(dir, 'connections.json'),
        '--',
        'sh',
        '-c',
        'echo "key=$OPENAI_API_KEY"; test "$OPENAI_API_KEY" = "$0" && echo env-ok; cat /tmp/grexal/gcp/service-account.json; echo; node --input-type=module -e "$1"',
        CANARY.apiKey,
        "import { ctx } from '/opt/grexal/ctx.mjs'; const r = await ctx.connect('gcp'); console.log(r.files['service-account.json']);",
      ],
      { GREXAL_STATE_DIR: stateDir },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('key=***');
    expect(stdout).toContain('env-ok');
    expect(stdout).toContain('/tmp/grexal/gcp/service-account.json');
    for (const value of ALL) {
      expect(stdout).not.toContain(value);
      expect(stderr).not.toContain(value);
    }
  });

  it('refuses a missing required credential, naming it, before anything exists', async () => {
    await writeFile(join(dir, 'partial.json'), JSON.stringify({ aws: credentialsFor(CANARY).aws }));
    const since = Math.floor(Date.now() / 1000) - 1;
    const run = startCli(
      [
        'run',
        '--manifest',
        join(dir, 'grexal.json'),
        '--connections',
        join(dir, 'partial.json'),
        '--',
        'true',
      ],
      { GREXAL_STATE_DIR: stateDir },
    );
    const code = await run.exited;
    const { stderr } = run;
    expect(code).toBe(1);
    expect(stderr).toContain('E_MISSING_CREDENTIALS');
    expect(stderr).toMatch(/openai, gmail, gcp/);
    expect(await containersCreatedByPid(run.child.pid, since)).toEqual([]);
    expect(stderr).not.toContain(CANARY.accessKey);
  });
});
