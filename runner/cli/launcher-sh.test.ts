/**
 * bin/grexal, the `grexal` command npm links: which commands start Node without
 * NODE_EXTRA_CA_CERTS (held in GREXAL_HELD_EXTRA_CA_CERTS), and that it finds the launcher
 * (dist/grexal.cjs, made by `npm run build`) and passes the arguments through however it is
 * reached. The `node` it execs is a fake on PATH that reports what it was given;
 * test/launcher.test.ts runs the real thing against the engine.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const LAUNCHER = resolve(import.meta.dirname, '../../bin/grexal');
const BIN_DIR = resolve(import.meta.dirname, '../../bin');
const CA = '/etc/ssl/certs/some bundle.crt';

interface Seen {
  script: string;
  args: string[];
  extraCa: string | null;
  held: string | null;
}

let dir: string;
let fakeBin: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'launcher-sh-'));
  fakeBin = join(dir, 'fake-bin');
  mkdirSync(fakeBin);
  const reporter = join(dir, 'report.cjs');
  writeFileSync(
    reporter,
    `const [script, ...args] = process.argv.slice(2);
const env = process.env;
process.stdout.write(JSON.stringify({ script, args, extraCa: env.NODE_EXTRA_CA_CERTS ?? null, held: env.GREXAL_HELD_EXTRA_CA_CERTS ?? null }));`,
  );
  // The real node with the real env, given the launcher's arguments (the script first).
  writeFileSync(join(fakeBin, 'node'), `#!/bin/sh\nexec '${process.execPath}' '${reporter}' "$@"\n`, {
    mode: 0o755,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function launch(
  args: string[],
  env: Record<string, string>,
  file = LAUNCHER,
  options: { cwd?: string; viaSh?: boolean } = {},
): Seen {
  const child = spawnSync(options.viaSh ? 'sh' : file, options.viaSh ? [file, ...args] : args, {
    encoding: 'utf8',
    cwd: options.cwd,
    env: { PATH: `${fakeBin}:/usr/bin:/bin`, ...env },
  });
  if (child.status !== 0) throw new Error(`launcher exited ${child.status}: ${child.stderr}`);
  return JSON.parse(child.stdout) as Seen;
}

const held: Pick<Seen, 'extraCa' | 'held'> = { extraCa: null, held: CA };
const kept: Pick<Seen, 'extraCa' | 'held'> = { extraCa: CA, held: null };

describe('bin/grexal: NODE_EXTRA_CA_CERTS', () => {
  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['a unix socket', 'unix:///var/run/docker.sock'],
  ])('holds it for `run` when DOCKER_HOST is %s (a local engine: no TLS)', (_, dockerHost) => {
    const env: Record<string, string> = { NODE_EXTRA_CA_CERTS: CA };
    if (dockerHost !== undefined) env['DOCKER_HOST'] = dockerHost;
    expect(launch(['run', '--image', 'grexal/agent', '--', 'true'], env)).toMatchObject(held);
  });

  it.each([
    'tcp://127.0.0.1:2376',
    'https://127.0.0.1:2376',
    'http://127.0.0.1:2375',
    'ssh://user@host',
    ' unix:///var/run/docker.sock',
  ])('keeps it for `run` when DOCKER_HOST is %j (anything but a unix:// socket may be TLS)', (dockerHost) => {
    expect(launch(['run', '--', 'true'], { NODE_EXTRA_CA_CERTS: CA, DOCKER_HOST: dockerHost })).toMatchObject(
      kept,
    );
  });

  it.each([
    [['serve', '--port', '0']],
    [['dev', 'examples/demo-agent']],
    [['doctor', '--fix']],
    [['images', 'build']],
    [['--help']],
    [['help', 'run']],
    [['--image', 'x', 'run']],
    [['RUN']],
    [[]],
  ])('keeps it for every other command: %j', (args) => {
    expect(launch(args, { NODE_EXTRA_CA_CERTS: CA })).toMatchObject(kept);
  });

  it('sets nothing when the variable is not set, or is empty', () => {
    expect(launch(['run', '--', 'true'], {})).toMatchObject({ extraCa: null, held: null });
    expect(launch(['run', '--', 'true'], { NODE_EXTRA_CA_CERTS: '' })).toMatchObject({
      extraCa: '',
      held: null,
    });
  });
});

describe('bin/grexal: the script and the arguments', () => {
  const args = ['run', '--image', 'a b', '--', 'sh', '-c', 'echo "$HOME" * \\ $(id)', '', 'line\nbreak'];
  const script = resolve(BIN_DIR, '../dist/grexal.cjs');

  it('runs dist/grexal.cjs with the arguments exactly as given', () => {
    const seen = launch(args, {});
    expect({ ...seen, script: resolve(seen.script) }).toEqual({ script, args, extraCa: null, held: null });
  });

  it('finds dist/grexal.cjs through npm-style symlinks, relative and absolute, and chains of them', () => {
    const pkg = join(dir, 'project/node_modules/grexal-runner');
    mkdirSync(join(dir, 'project/node_modules/.bin'), { recursive: true });
    symlinkSync(resolve(BIN_DIR, '..'), pkg);
    const relative = join(dir, 'project/node_modules/.bin/grexal');
    symlinkSync('../grexal-runner/bin/grexal', relative);
    const chained = join(dir, 'global-grexal');
    symlinkSync(relative, chained);
    const absolute = join(dir, 'absolute-grexal');
    symlinkSync(LAUNCHER, absolute);
    for (const link of [relative, chained, absolute]) {
      const seen = launch(['run', '--', 'true'], { NODE_EXTRA_CA_CERTS: CA }, link);
      expect(resolve(seen.script)).toMatch(/\/dist\/grexal\.cjs$/);
      expect(spawnSync('realpath', [seen.script], { encoding: 'utf8' }).stdout.trim()).toBe(script);
      expect(seen).toMatchObject(held);
    }
  });

  it('finds it when started by name from PATH, or as `sh grexal` from its own directory', () => {
    const onPath = spawnSync('grexal', ['--help'], {
      encoding: 'utf8',
      env: { PATH: `${BIN_DIR}:${fakeBin}:/usr/bin:/bin` },
    });
    expect(resolve((JSON.parse(onPath.stdout) as Seen).script)).toBe(script);
    const bySh = launch(['--help'], {}, 'grexal', { cwd: BIN_DIR, viaSh: true });
    expect(resolve(BIN_DIR, bySh.script)).toBe(script);
  });

  it('says to build when dist/grexal.cjs is missing, and starts no node', () => {
    const unbuilt = join(dir, 'unbuilt/bin');
    mkdirSync(unbuilt, { recursive: true });
    copyFileSync(LAUNCHER, join(unbuilt, 'grexal'));
    const child = spawnSync(join(unbuilt, 'grexal'), ['run', '--', 'true'], {
      encoding: 'utf8',
      env: { PATH: `${fakeBin}:/usr/bin:/bin` },
    });
    expect(child.status).toBe(1);
    expect(child.stdout).toBe('');
    expect(child.stderr).toContain('dist/grexal.cjs is missing. Run `npm run build` first.');
  });
});

describe("bin/grexal: `grexal run`'s startup snapshot", () => {
  let pkg: string;
  let blob: string;
  const identity = () =>
    spawnSync('stat', ['-L', '-c', '%d:%i:%s:%Z', join(fakeBin, 'node')], { encoding: 'utf8' }).stdout.trim();
  // A package of its own: the launcher, a stand-in dist/grexal.cjs and a blob said to be the fake node's.
  beforeAll(() => {
    pkg = join(dir, 'snapshot-pkg');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    mkdirSync(join(pkg, 'dist'));
    copyFileSync(LAUNCHER, join(pkg, 'bin/grexal'));
    writeFileSync(join(pkg, 'dist/grexal.cjs'), '');
    blob = join(pkg, 'dist/grexal-run.blob');
    writeFileSync(blob, '');
    writeFileSync(`${blob}.node`, `${identity()}\n`);
  });
  const launchIn = (args: string[], env: Record<string, string> = {}) =>
    launch(args, env, join(pkg, 'bin/grexal'));

  it('starts `run` from the blob when it was made by the very node on PATH, arguments intact', () => {
    const args = ['run', '--image', 'a b', '--', 'sh', '-c', 'echo "$HOME" *', ''];
    // As bin/grexal names it, from its own directory.
    const given = `${pkg}/bin/../dist/grexal-run.blob`;
    expect(launchIn(args)).toMatchObject({ script: '--snapshot-blob', args: [given, ...args] });
    // The CA file is still held for it.
    expect(launchIn(['run', '--', 'true'], { NODE_EXTRA_CA_CERTS: CA })).toMatchObject({
      script: '--snapshot-blob',
      ...held,
    });
  });

  it('starts the launcher for every other command, with NODE_OPTIONS, or for a blob of another node', () => {
    const launcher = `${pkg}/bin/../dist/grexal.cjs`;
    expect(launchIn(['serve'])).toMatchObject({ script: launcher });
    expect(launchIn(['run', '--', 'true'], { NODE_OPTIONS: '--max-old-space-size=100' })).toMatchObject({
      script: launcher,
    });
    try {
      writeFileSync(`${blob}.node`, '1:2:3:4\n');
      expect(launchIn(['run', '--', 'true'])).toMatchObject({ script: launcher });
      rmSync(`${blob}.node`);
      expect(launchIn(['run', '--', 'true'])).toMatchObject({ script: launcher });
    } finally {
      writeFileSync(`${blob}.node`, `${identity()}\n`);
    }
    rmSync(blob);
    expect(launchIn(['run', '--', 'true'])).toMatchObject({ script: launcher });
  });
});
