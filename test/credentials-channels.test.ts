/**
 * Credential injection against the real engine, through the library: every channel end to end
 * (env, files, ctx.connect from JS and Python), no canary anywhere else (inspect, processes, state
 * dir, data root, logs, events), two concurrent sandboxes kept apart, and masking of every form of
 * a secret the agent prints. Setup: test/credentials-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  ALL,
  CANARY,
  canary,
  credentialsFor,
  filesContaining,
  fromHex,
  hostCommandLines,
  lines,
  logLines,
  manifest,
  PYTHON_AGENT,
  REPORT_AGENT,
  runAgent,
  stateDir,
  useCredentialsFixture,
} from './credentials-fixture.ts';
import { docker, sandboxContainers } from './helpers.ts';

useCredentialsFixture();

describe('credential injection (library)', () => {
  it('delivers every channel as declared and leaks no canary anywhere else', async () => {
    const run = await runAgent({
      command: [
        'sh',
        '-c',
        `node --input-type=module -e "$0" && python3 -c "$1"`,
        REPORT_AGENT,
        PYTHON_AGENT,
      ],
      manifest,
      credentials: credentialsFor(CANARY),
    });
    // While it runs: the container's config, the host's process list, the runner's state directory.
    const during = await Promise.all([
      sandboxContainers(run.sandbox.id).then(async ([c]) =>
        c ? JSON.stringify(await docker.getContainer(c.Id).inspect()) : '',
      ),
      hostCommandLines(),
      filesContaining(stateDir, ALL),
    ]);
    const exit = await run.exit;
    expect(exit).toEqual({ exitCode: 0, reason: 'exited', oomKilled: false });
    const report = lines(run.stdout());

    const env = report.find((r) => r['channel'] === 'env')!['values'] as string[];
    expect(env.map(fromHex)).toEqual([
      CANARY.apiKey,
      CANARY.accessKey,
      CANARY.secretKey,
      '/tmp/grexal/gcp/service-account.json',
    ]);
    const pid1 = fromHex(report.find((r) => r['channel'] === 'pid1')!['hex'] as string);
    for (const value of ALL) expect(pid1).not.toContain(value);

    const files = report.filter((r) => r['channel'] === 'file');
    expect(files.map((f) => [f['path'], f['mode'], f['uid']])).toEqual([
      ['/tmp/grexal/gcp/service-account.json', '400', 1000],
      ['/tmp/grexal/aws/credentials.json', '400', 1000],
    ]);
    expect(JSON.parse(fromHex(files[0]!['hex'] as string))).toEqual({ private_key: CANARY.fileKey });
    expect(JSON.parse(fromHex(files[1]!['hex'] as string))).toEqual({
      access_key: CANARY.accessKey,
      secret_key: CANARY.secretKey,
      region: 'eu-west-1',
    });
    expect(report.find((r) => r['channel'] === 'mounts')!['line']).toMatch(
      /^tmpfs \/tmp\/grexal tmpfs rw,nosuid,nodev,noexec/,
    );

    const connect = Object.fromEntries(
      report
        .filter((r) => r['channel'] === 'connect')
        .map((r) => [r['id'], r['error'] ?? JSON.parse(fromHex(r['hex'] as string))]),
    );
    expect(connect['openai']).toEqual({ mode: 'secret_input', fields: { api_key: CANARY.apiKey } });
    expect(connect['gmail']).toMatchObject({
      mode: 'oauth_redirect',
      access_token: CANARY.oauth,
      token_type: 'Bearer',
    });
    expect(connect['gcp']).toEqual({
      mode: 'file_upload',
      dir: '/tmp/grexal/gcp',
      files: { 'service-account.json': '/tmp/grexal/gcp/service-account.json' },
    });
    expect(connect['slack']).toBe('not_connected');
    expect(connect['undeclared']).toBe('not_declared');
    const python = report.filter((r) => r['channel'] === 'python');
    expect(JSON.parse(fromHex(python[0]!['hex'] as string))).toEqual(connect['openai']);
    expect(python[1]!['error']).toBe('not_connected');

    // Audit events name the connection, never a value.
    const audits = run.events.filter((e) => e.type === 'connect');
    expect(audits.map((e) => (e as { connectionId: string }).connectionId).sort()).toEqual([
      'aws',
      'gcp',
      'gmail',
      'openai',
      'openai',
    ]);

    const [inspect, processes, stateFiles] = during;
    const afterwards = await filesContaining(stateDir, ALL);
    const dataRoot = await filesContaining('/var/lib/docker', ALL);
    for (const value of ALL) {
      expect(inspect).not.toContain(value);
      expect(processes).not.toContain(value);
      expect(JSON.stringify(run.events)).not.toContain(value);
      expect(logLines).not.toContain(value);
    }
    expect(inspect).not.toBe('');
    expect(stateFiles).toEqual([]);
    expect(afterwards).toEqual([]);
    expect(dataRoot).toEqual([]);
  });

  it('keeps two concurrent sandboxes to their own credentials on every channel', async () => {
    const other = {
      ...CANARY,
      apiKey: canary('second-openai'),
      fileKey: canary('second-gcp'),
      oauth: canary('second-oauth'),
    };
    const agent = `node --input-type=module -e "$0"`;
    const [a, b] = await Promise.all([
      runAgent({ command: ['sh', '-c', agent, REPORT_AGENT], manifest, credentials: credentialsFor(CANARY) }),
      runAgent({ command: ['sh', '-c', agent, REPORT_AGENT], manifest, credentials: credentialsFor(other) }),
    ]);
    await Promise.all([a.exit, b.exit]);
    const decoded = (out: string) =>
      lines(out)
        .map((r) =>
          [
            r['values'] ? (r['values'] as string[]).map(fromHex).join(' ') : '',
            r['hex'] ? fromHex(r['hex'] as string) : '',
          ].join(' '),
        )
        .join('\n');
    const seenA = decoded(a.stdout());
    const seenB = decoded(b.stdout());
    for (const key of ['apiKey', 'fileKey', 'oauth'] as const) {
      expect(seenA).toContain(CANARY[key]);
      expect(seenA).not.toContain(other[key]);
      expect(seenB).toContain(other[key]);
      expect(seenB).not.toContain(CANARY[key]);
    }
  });

  it('masks every form of a secret the agent prints, split across writes too', async () => {
    const secret = CANARY.apiKey;
    const forms = [
      secret,
      Buffer.from(secret).toString('base64'),
      Buffer.from(`x${secret}`).toString('base64'),
      Buffer.from(`xy${secret}`).toString('base64'),
      encodeURIComponent(`${secret}/+= &`),
      JSON.stringify(`say "${secret}"\n`),
    ];
    const script = `
      const s = process.env.OPENAI_API_KEY;
      const b = (t) => Buffer.from(t).toString('base64');
      const forms = [s, b(s), b('x' + s), b('xy' + s), encodeURIComponent(s + '/+= &'), JSON.stringify('say "' + s + '"\\n')];
      for (const f of forms) process.stdout.write('[' + f + ']\\n');
      const half = s.length >> 1;
      process.stdout.write('split:' + s.slice(0, half));
      setTimeout(() => { process.stdout.write(s.slice(half) + ':end\\n'); process.stderr.write('err:' + s + '\\n'); }, 100);
    `;
    const run = await runAgent({
      command: ['node', '-e', script],
      manifest,
      credentials: credentialsFor(CANARY),
    });
    await run.exit;
    const everything = JSON.stringify(run.events);
    expect(run.stdout()).toContain('split:***:end');
    for (const form of forms) {
      // Each printed form is there, masked: the line exists but holds none of the secret's forms.
      expect(everything).not.toContain(form.slice(1, -1).length >= 8 ? form.slice(1, -1) : form);
    }
    expect(everything).not.toContain(secret);
    expect(everything).toContain('err:***');
  });
});
