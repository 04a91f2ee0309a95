/**
 * A hostile caller against a real `grexal serve` and the real engine: image references that are
 * not references, and strings that have no UTF-8 form. Each is refused with 400 and its code and
 * path before any engine call, nothing is created, nothing is dialled, and the server lives on.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliRun,
  containersOfPid,
  newStateDir,
  removeStateDir,
  runCli,
  sandboxDirs,
  startCli,
} from './helpers.ts';

const TOKEN = 'hostile-input-token-7a1d';
let stateDir: string;
let cli: CliRun;
let url: string;
// A loopback listener this test owns: the address a crafted image name used to make the runner dial.
let trap: Server;
let trapPort: number;
const trapped: Socket[] = [];

beforeAll(async () => {
  trap = createServer((socket) => {
    trapped.push(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapPort = (trap.address() as { port: number }).port;
  stateDir = await newStateDir();
  cli = startCli(['serve', '--port', '0'], {
    GREXAL_STATE_DIR: stateDir,
    GREXAL_RUNNER_TOKEN: TOKEN,
    GREXAL_LOG_LEVEL: 'warn',
  });
  url = (await cli.waitFor(/serving on (http:\/\/\S+)/, 'stderr'))[1] ?? '';
});

afterAll(async () => {
  if (cli?.child.exitCode === null) {
    cli.child.kill('SIGTERM');
    await cli.exited;
  }
  await new Promise((resolve) => trap?.close(resolve));
  await removeStateDir(stateDir);
});

const create = (body: string) =>
  fetch(`${url}/v1/sandboxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body,
  });

interface Envelope {
  error: { code: string; message: string; details?: { code: string; path: string; fix?: string }[] };
}

async function expectRefused(body: string, code: string, path: string): Promise<void> {
  const res = await create(body);
  const json = (await res.json()) as Envelope;
  expect([res.status, json.error.code], body.slice(0, 120)).toEqual([400, 'E_VALIDATION']);
  expect(json.error.details?.find((p) => p.path === path)?.code, body.slice(0, 120)).toBe(code);
  expect(json.error.details?.find((p) => p.path === path)?.fix).toBeTruthy();
}

async function expectNothingCreatedAndAlive(): Promise<void> {
  expect(trapped).toHaveLength(0);
  expect(await containersOfPid(cli.child.pid)).toEqual([]);
  expect(await sandboxDirs(stateDir)).toEqual([]);
  expect(cli.child.exitCode).toBeNull();
  const health = await fetch(`${url}/healthz`);
  expect(health.status).toBe(200);
}

describe('grexal serve refuses hostile input', () => {
  it('refuses every image form that is not a reference, dials nothing, creates nothing, and keeps serving', async () => {
    // The forgery first: on a runner that follows the engine's redirect it reaches the trap.
    const forms = [
      `../../127.0.0.1:${trapPort}/x`,
      `../../127.0.0.1:${trapPort}/x:tag`,
      '../../etc/passwd',
      'grexal/agent\0',
      'Grexal/Agent',
      'grexal/ agent',
      '',
      'a//b',
      ':tag',
      'a'.repeat(300),
      'grexal/agent?x=1',
      'grexal/agent#frag',
      'grexal%2f..%2f..%2fx',
    ];
    for (const image of forms) {
      await expectRefused(JSON.stringify({ image, command: ['true'] }), 'E_IMAGE_REFERENCE_INVALID', 'image');
    }
    await expectNothingCreatedAndAlive();
  });

  it('refuses lone surrogates in the command, env, metadata and manifest with their paths', async () => {
    const cases: [string, string][] = [
      ['{"image":"grexal/agent","command":["echo","\\ud800"]}', 'command[1]'],
      ['{"image":"grexal/agent","command":["true"],"env":{"X":"a\\udfffb"}}', 'env.X'],
      ['{"image":"grexal/agent","command":["true"],"metadata":{"job":"\\ud83d"}}', 'metadata.job'],
      [
        '{"image":"grexal/agent","command":["true"],"manifest":{"connections":[{"id":"b","mode":"browser_login","label":"x\\udc00"}]}}',
        'manifest.connections[0].label',
      ],
      ['{"image":"grexal/agent","command":["echo","a\\u0000b"]}', 'command[1]'],
    ];
    for (const [body, path] of cases) await expectRefused(body, 'E_STRING_UNENCODABLE', path);
    await expectNothingCreatedAndAlive();
  });

  it('is ready on the real engine with its images, and live either way', async () => {
    const ready = await fetch(`${url}/readyz`);
    const body = (await ready.json()) as { ready: boolean; engine: string; images: string[] };
    expect([ready.status, body.ready]).toEqual([200, true]);
    expect(body.images).toEqual(['grexal/agent', 'grexal/desktop']);
    expect(body.engine).toMatch(/^unix:\/\//);
  });

  it('grexal run --image refuses the same forms before the engine is asked', async () => {
    const run = await runCli(['run', '--image', `../../127.0.0.1:${trapPort}/x`, '--', 'true'], {
      GREXAL_STATE_DIR: stateDir,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('E_IMAGE_REFERENCE_INVALID');
    expect(run.stderr).toContain('nothing was created');
    await expectNothingCreatedAndAlive();
  });
});
