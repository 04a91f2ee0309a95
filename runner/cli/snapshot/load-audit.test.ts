/**
 * The watch on what the run bundle's load reads while its startup snapshot is built, run here on
 * a stand-in bundle (a file with esbuild's module headers), and the check a run makes against it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { changedSince, type FrozenEnvironment, watchLoad } from './load-audit.ts';

const dir = mkdtempSync(join(os.tmpdir(), 'load-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A bundle of functions, each under esbuild's header for its module (called as if at load). */
function loadBundle(modules: Record<string, string>): string {
  const file = join(dir, `bundle-${Object.keys(modules).length}-${Date.now()}.cjs`);
  const text = Object.entries(modules)
    .map(([module, body]) => `// ${module}\nexports[${JSON.stringify(module)}] = () => { ${body} };`)
    .join('\n\n');
  writeFileSync(file, text);
  return file;
}

describe('watchLoad', () => {
  it("keeps each variable the load read, with its value then, and lets pino's host name through", () => {
    const bundle = loadBundle({
      'runner/reads-env.ts': 'return [process.env.GREXAL_AUDIT_SET, process.env.GREXAL_AUDIT_UNSET]',
      // As debug does at its load: a watch that sees no DEBUG read started too late.
      'node_modules/debug/src/node.js': 'return process.env.DEBUG',
      'node_modules/pino/pino.js': 'return require("node:os").hostname()',
    });
    process.env['GREXAL_AUDIT_SET'] = 'then';
    const watch = watchLoad(bundle);
    const loaded = require(bundle) as Record<string, () => unknown>;
    const read = [loaded['runner/reads-env.ts']!(), loaded['node_modules/pino/pino.js']!()];
    loaded['node_modules/debug/src/node.js']!();
    const frozen = watch.finish();
    delete process.env['GREXAL_AUDIT_SET'];
    expect(read).toEqual([['then', undefined], os.hostname()]);
    expect(frozen.variables).toEqual({
      GREXAL_AUDIT_SET: 'then',
      GREXAL_AUDIT_UNSET: undefined,
      DEBUG: process.env['DEBUG'],
    });
  });

  it("knows pino and debug in a node_modules linked from elsewhere (esbuild's real paths)", () => {
    const bundle = loadBundle({
      '../../elsewhere/node_modules/debug/src/node.js':
        'return [process.env.DEBUG, Object.keys(process.env)]',
      '../../elsewhere/node_modules/pino/pino.js': 'return require("node:os").hostname()',
      '../../elsewhere/node_modules/not-pino/index.js': 'return require("node:os").hostname()',
    });
    const watch = watchLoad(bundle);
    const loaded = require(bundle) as Record<string, () => unknown>;
    for (const load of Object.values(loaded)) load();
    expect(() => watch.finish()).toThrow(/not-pino\/index\.js: os\.hostname/);
    const allowedOnly = loadBundle({
      '../../elsewhere/node_modules/debug/src/node.js':
        'return [process.env.DEBUG, Object.keys(process.env)]',
      '../../elsewhere/node_modules/pino/pino.js': 'return require("node:os").hostname()',
    });
    const again = watchLoad(allowedOnly);
    for (const load of Object.values(require(allowedOnly) as Record<string, () => unknown>)) load();
    expect(again.finish().variables).toEqual({ DEBUG: process.env['DEBUG'] });
  });

  it('fails, naming the module and the call, when the load reads the host, the clock or randomness', () => {
    const bundle = loadBundle({
      'runner/stamps.ts': 'return [Date.now(), Math.random(), require("node:os").hostname()]',
    });
    const watch = watchLoad(bundle);
    (require(bundle) as Record<string, () => unknown>)['runner/stamps.ts']!();
    expect(() => watch.finish()).toThrow(
      /runner\/stamps\.ts: Date\.now[\s\S]*runner\/stamps\.ts: Math\.random[\s\S]*runner\/stamps\.ts: os\.hostname/,
    );
  });

  it('puts everything back when it finishes', () => {
    const { now } = Date;
    const { hostname } = os;
    const env = process.env;
    // A load that read nothing: the watch started after it, which finish() says.
    expect(() => watchLoad(loadBundle({})).finish()).toThrow(/the watch saw no DEBUG read/);
    expect([Date.now, os.hostname, process.env]).toEqual([now, hostname, env]);
    expect(process.env).toBe(env);
  });
});

describe('changedSince', () => {
  const frozen: FrozenEnvironment = {
    variables: { DEBUG: undefined, READABLE_STREAM: undefined },
    debugOptions: {},
  };

  it('is empty for the environment the load saw, whatever else is set', () => {
    expect(changedSince(frozen, { PATH: '/bin', HOME: '/root' })).toEqual([]);
  });

  it('names a variable that is set now, or set otherwise, and a new DEBUG_* option', () => {
    expect(changedSince(frozen, { DEBUG: 'modem' })).toEqual(['DEBUG']);
    expect(changedSince({ ...frozen, variables: { X: 'a' } }, { X: 'b' })).toEqual(['X']);
    expect(changedSince(frozen, { DEBUG_DEPTH: '3' })).toEqual(['DEBUG_DEPTH']);
    expect(changedSince({ ...frozen, debugOptions: { DEBUG_DEPTH: '3' } }, {})).toEqual(['DEBUG_DEPTH']);
  });
});
