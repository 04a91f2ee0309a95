/**
 * The `grexal` command as npm links it (bin/grexal): `grexal run` against the engine starts its
 * Node without NODE_EXTRA_CA_CERTS (Node parses that file at every start) and still hands the
 * user's value, unchanged, to what it spawns. Seen from a `mount` on PATH ahead of the real one
 * (the CLI spawns `mount` for the sandbox's run directory): it records its own variable and the
 * environment the CLI's Node process was started with (/proc/<its parent>/environ), then execs
 * the real mount.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collected, newStateDir, REPO, removeStateDir } from './helpers.ts';

let dir: string;
let stateDir: string;
let extraCa: string;
let report: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'grexal-launcher-'));
  stateDir = await newStateDir();
  // A path with a space, to see it handed over exactly.
  extraCa = join(dir, 'extra ca.pem');
  writeFileSync(extraCa, `${rootCertificates[0]}\n`);
  report = join(dir, 'mount-saw');
  const realMount = execFileSync('sh', ['-c', 'command -v mount'], { encoding: 'utf8' }).trim();
  writeFileSync(
    join(dir, 'mount'),
    `#!/bin/sh
{
  printf 'child %s\\n' "\${NODE_EXTRA_CA_CERTS-<unset>}"
  tr '\\0' '\\n' < /proc/$PPID/environ | sed -n 's/^\\(NODE_EXTRA_CA_CERTS\\|GREXAL_HELD_EXTRA_CA_CERTS\\)=/parent \\1 /p'
} > '${report}'
exec '${realMount}' "$@"
`,
  );
  chmodSync(join(dir, 'mount'), 0o755);
});
afterAll(async () => {
  await removeStateDir(stateDir);
  rmSync(dir, { recursive: true, force: true });
});

function grexal(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return collected(spawn(join(REPO, 'bin/grexal'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

describe('bin/grexal run', () => {
  it("starts Node without NODE_EXTRA_CA_CERTS, and what the CLI spawns sees the user's value", async () => {
    // The engine as the other tests reach it: the default socket, or DOCKER_HOST=unix://….
    const result = await grexal(['run', '--image', 'grexal/agent', '--', 'sh', '-c', 'echo ran'], {
      ...process.env,
      NODE_EXTRA_CA_CERTS: extraCa,
      GREXAL_STATE_DIR: stateDir,
      PATH: `${dir}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('ran\n');
    const saw = readFileSync(report, 'utf8').trim().split('\n');
    // The spawned mount: the user's value exactly, and no hand-over variable.
    expect(saw).toContain(`child ${extraCa}`);
    // The CLI's Node process was started with the value held back, not with the variable.
    expect(saw).toContain(`parent GREXAL_HELD_EXTRA_CA_CERTS ${extraCa}`);
    expect(saw.filter((line) => line.startsWith('parent NODE_EXTRA_CA_CERTS'))).toEqual([]);
  });
});

describe('bin/grexal run from its startup snapshot (dist/grexal-run.blob)', () => {
  const env = () => ({ ...process.env, GREXAL_STATE_DIR: stateDir, GREXAL_TIMINGS: '1' });
  const loadedBy = (stderr: string) => /timing .* cli bundle loaded \((.*)\)$/m.exec(stderr)?.[1];

  it('runs from the snapshot, its logs saying its own pid', async () => {
    const child = spawn(
      join(REPO, 'bin/grexal'),
      ['run', '--image', 'grexal/agent', '--', 'sh', '-c', 'echo ran'],
      {
        env: { ...env(), GREXAL_LOG_LEVEL: 'debug' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const result = await collected(child);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('ran\n');
    expect(loadedBy(result.stderr)).toBe('snapshot');
    // pino's default pid is its load's: the builder's, in a snapshot.
    const logs = result.stderr.split('\n').filter((line) => line.startsWith('{'));
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect((JSON.parse(line) as { pid: number }).pid).toBe(child.pid);
  });

  it('loads the bundle itself when a variable its load read differs (DEBUG), and runs alike', async () => {
    const result = await grexal(['run', '--image', 'grexal/agent', '--', 'sh', '-c', 'echo ran'], {
      ...env(),
      DEBUG: 'grexal-none',
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('ran\n');
    expect(loadedBy(result.stderr)).toBe('not the snapshot: DEBUG');
  });

  it('loads the bundle of its own checkout when the blob was moved with it', async () => {
    const moved = join(dir, 'moved checkout');
    for (const part of ['bin', 'dist', 'package.json', 'sandbox-agent', 'images']) {
      cpSync(join(REPO, part), join(moved, part), { recursive: true });
    }
    symlinkSync(join(REPO, 'node_modules'), join(moved, 'node_modules'));
    const result = await collected(
      spawn(join(moved, 'bin/grexal'), ['run', '--image', 'grexal/agent', '--', 'sh', '-c', 'echo ran'], {
        env: env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('ran\n');
    expect(loadedBy(result.stderr)).toBe('not the snapshot: moved');
  });
});
