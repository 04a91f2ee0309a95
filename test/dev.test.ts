/** `grexal dev` on an agent directory, and the README's demo, against the real engine and browser. */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOfPid, docker, newStateDir, REPO, removeStateDir, runCli } from './helpers.ts';

let stateDir: string;
beforeAll(async () => {
  stateDir = await newStateDir();
});
afterAll(async () => {
  await removeStateDir(stateDir);
});

describe('grexal dev', () => {
  let dir: string;
  const secret = 'dev-canary-7f3a9c2e51';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grexal-dev-agent-'));
    await writeFile(
      join(dir, 'Dockerfile'),
      'FROM grexal/agent\nCOPY . /opt/agent/\nCMD ["sh", "-c", "echo key=$API_KEY; ls -A /opt/agent"]\n',
    );
    await writeFile(
      join(dir, 'grexal.json'),
      JSON.stringify({
        name: 'dev-test-agent',
        connections: [
          { id: 'service', mode: 'secret_input', fields: [{ key: 'api_key' }], env: { API_KEY: 'api_key' } },
          { id: 'site', mode: 'browser_login', loginUrl: 'http://127.0.0.1/login' },
        ],
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await docker
      .getImage(`grexal-dev/${dir.split('/').pop()!.toLowerCase()}`)
      .remove({ force: true })
      .catch(() => {});
  });

  // Its browser_login connection would get the local browser (test/dev-browser.test.ts tests that).
  const dev = () => runCli(['dev', dir, '--no-open', '--browser', 'desktop'], { GREXAL_STATE_DIR: stateDir });

  it('writes a connections template on first run and says what to fill', async () => {
    const { code, stderr } = await dev();
    expect(code).toBe(2);
    expect(stderr).toMatch(/fill in service and run again/);
    const path = join(dir, '.grexal', 'connections.json');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      service: { fields: { api_key: '<fill in: api_key>' } },
    });
  });

  it('refuses placeholders, naming each', async () => {
    const { code, stderr } = await dev();
    expect(code).toBe(1);
    expect(stderr).toContain('service.fields.api_key');
    expect(stderr).toContain('E_CREDENTIAL_PLACEHOLDER');
  });

  it('builds the image without .grexal/ and runs the agent with its credentials', async () => {
    await writeFile(
      join(dir, '.grexal', 'connections.json'),
      JSON.stringify({ service: { fields: { api_key: secret } } }),
    );
    const { code, stdout, stderr } = await dev();
    expect(stderr).toMatch(/building grexal-dev\//);
    expect(code).toBe(0);
    expect(stdout).toContain('key=***');
    expect(stdout).toContain('grexal.json');
    // Local credentials never enter the image.
    expect(stdout).not.toContain('.grexal');
    expect(stdout + stderr).not.toContain(secret);
    const again = await dev();
    expect(again.stderr).toMatch(/is up to date/);
  });
});

describe('npm run demo -- --auto', () => {
  it('reports every channel masked and logs in through a takeover', async () => {
    // The demo after setup (the test run has set up already): examples/demo.ts itself.
    const child = spawn(process.execPath, ['scripts/run-ts.mjs', 'examples/demo.ts', '--auto'], {
      cwd: REPO,
      env: { ...process.env, GREXAL_STATE_DIR: stateDir },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) console.error(out);
    expect(code).toBe(0);
    for (const line of [
      'OPENAI_API_KEY=*** (24 characters)',
      '/tmp/grexal/gcp/service-account.json: mode 400, uid 1000',
      'gmail: {"mode":"oauth_redirect","access_token":"***"',
      'github: refused with not_declared',
      "openai: {'mode': 'secret_input', 'fields': {'api_key': '***'}}",
      'takeover: http://127.0.0.1:',
      'scripted user: logged in through the stream',
      'logged in as ada',
      'demo: done',
    ]) {
      expect(out).toContain(line);
    }
    const demo = JSON.parse(await readFile(join(REPO, 'examples/demo-agent/demo-connections.json'), 'utf8'));
    expect(out).not.toContain(demo.openai.fields.api_key);
    expect(out).not.toContain(demo.aws.fields.secret_key);
    expect(out).not.toContain(demo.gmail.access_token);
    expect(await containersOfPid(child.pid)).toEqual([]);
  });
});
