/**
 * The built-ins' stand-ins of `grexal run`'s startup snapshot: the real module's behaviour after
 * the build, its key list (and nothing else) while a real `node --build-snapshot` runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { lazyBuiltin } from './lazy-builtin.ts';

const KEYS = Object.getOwnPropertyNames(http);

describe('lazyBuiltin, after the build', () => {
  const stand = lazyBuiltin('http', KEYS, () => http) as typeof http;

  it('is the module: its functions, classes, keys and prototype', () => {
    expect(stand.request).toBe(http.request);
    expect(new stand.Agent()).toBeInstanceOf(http.Agent);
    expect('globalAgent' in stand).toBe(true);
    expect(Object.keys(stand)).toEqual(Object.keys(http));
    expect(Object.getPrototypeOf(stand)).toBe(Object.getPrototypeOf(http));
  });

  it("leaves the module alone when an object built on it sets its own (docker-modem's wrapper)", () => {
    const wrapper = Object.create(stand) as { request: unknown; get: unknown };
    const own = () => 'wrapped';
    wrapper.request = own;
    expect(wrapper.request).toBe(own);
    expect(http.request).not.toBe(own);
    expect(wrapper.get).toBe(http.get);
  });
});

describe('lazyBuiltin, in a real snapshot build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lazy-builtin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Builds a snapshot whose entry runs `atBuild` with `http` a stand-in, then runs it; the outputs. */
  async function snapshot(atBuild: string) {
    const entry = join(dir, `entry-${Math.random().toString(36).slice(2)}.cjs`);
    await build({
      stdin: {
        contents: `const { lazyBuiltin } = require(${JSON.stringify(resolve(import.meta.dirname, 'lazy-builtin.ts'))});
const http = lazyBuiltin('http', ${JSON.stringify(KEYS)}, () => require('node:http'));
${atBuild}
require('node:v8').startupSnapshot.setDeserializeMainFunction(() => console.log(typeof http.request, typeof copied?.request));`,
        resolveDir: dir,
        loader: 'js',
      },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: entry,
      logLevel: 'silent',
    });
    const blob = `${entry}.blob`;
    const made = spawnSync(
      process.execPath,
      ['--no-warnings', '--snapshot-blob', blob, '--build-snapshot', entry],
      {
        encoding: 'utf8',
      },
    );
    const ran =
      made.status === 0
        ? spawnSync(process.execPath, ['--snapshot-blob', blob], { encoding: 'utf8' })
        : undefined;
    return { made, ran };
  }

  it('answers from the key list at build (a key this Node lacks is undefined), and is the module after', async () => {
    const { made, ran } = await snapshot(`
const { websocketMask } = http;
if (websocketMask !== undefined || !('request' in http)) throw new Error('not the key list');
// esbuild's ES module interop: a getter for each of the module's own names.
var copied = {};
for (const key of Object.getOwnPropertyNames(http)) Object.defineProperty(copied, key, { get: () => http[key], enumerable: true });`);
    expect(made.stderr).toBe('');
    expect(ran?.stdout).toBe('function function\n');
  });

  it('fails the build, naming the module, when the load uses it', async () => {
    const { made } = await snapshot('var copied; http.request;');
    expect(made.status).not.toBe(0);
    expect(made.stderr).toContain('The run bundle uses node:http while its startup snapshot is built');
  });
});
