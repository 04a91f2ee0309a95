import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { type ContextSource, collectContext, hashContext, packContext } from './context.ts';

let root: string;
const sources: ContextSource[] = [
  { path: 'images/Dockerfile', as: 'Dockerfile', fix: 'restore it' },
  { path: 'dist/app.mjs', fix: 'build it' },
  { path: 'pkg', dir: true, fix: 'restore it' },
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'grexal-context-test-'));
  await mkdir(join(root, 'images'));
  await mkdir(join(root, 'dist'));
  await mkdir(join(root, 'pkg/sub/__pycache__'), { recursive: true });
  await writeFile(join(root, 'images/Dockerfile'), 'FROM scratch\n');
  await writeFile(join(root, 'dist/app.mjs'), 'console.log(1)\n');
  await writeFile(join(root, 'pkg/__init__.py'), '');
  await writeFile(join(root, 'pkg/sub/mod.py'), 'x = 1\n');
  await writeFile(join(root, 'pkg/sub/__pycache__/mod.cpython-311.pyc'), 'junk');
  await writeFile(join(root, 'pkg/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await writeFile(join(root, 'unlisted.txt'), 'never in the context');
});

afterAll(() => rm(root, { recursive: true, force: true }));

describe('collectContext', () => {
  it('holds exactly the listed files, renamed where asked, without caches', async () => {
    const entries = await collectContext(root, sources);
    expect(entries.map((e) => e.name)).toEqual([
      'Dockerfile',
      'dist/app.mjs',
      'pkg/__init__.py',
      'pkg/run.sh',
      'pkg/sub/mod.py',
    ]);
    expect(entries.find((e) => e.name === 'pkg/run.sh')?.mode).toBe(0o755);
    expect(entries.find((e) => e.name === 'dist/app.mjs')?.mode).toBe(0o644);
  });

  it('takes a file outside the root by its absolute path, under the name it is given', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'grexal-context-outside-'));
    try {
      await writeFile(join(outside, 'tool'), 'binary', { mode: 0o755 });
      const entries = await collectContext(root, [{ path: join(outside, 'tool'), as: 'node', fix: 'x' }]);
      expect(entries).toEqual([{ name: 'node', content: Buffer.from('binary'), mode: 0o755 }]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('names a missing file and its fix', async () => {
    const error = await collectContext(root, [
      { path: 'dist/missing.mjs', fix: 'Run `npm run build`.' },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrexalError);
    expect((error as GrexalError).code).toBe('E_IMAGE_BUILD_FAILED');
    expect((error as GrexalError).message).toContain("'dist/missing.mjs'");
    expect((error as GrexalError).message).toContain('Run `npm run build`.');
  });
});

describe('hashContext', () => {
  it('is stable, and changes with content, names, modes and the base image', async () => {
    const entries = await collectContext(root, sources);
    const hash = hashContext(entries, ['base=sha256:1']);
    expect(hashContext([...entries].reverse(), ['base=sha256:1'])).toBe(hash);
    expect(hashContext(entries, ['base=sha256:2'])).not.toBe(hash);
    const edited = entries.map((e) => (e.name === 'dist/app.mjs' ? { ...e, content: Buffer.from('x') } : e));
    expect(hashContext(edited, ['base=sha256:1'])).not.toBe(hash);
    const renamed = entries.map((e) => (e.name === 'pkg/run.sh' ? { ...e, name: 'pkg/run2.sh' } : e));
    expect(hashContext(renamed, ['base=sha256:1'])).not.toBe(hash);
    const chmod = entries.map((e) => (e.name === 'pkg/run.sh' ? { ...e, mode: 0o644 } : e));
    expect(hashContext(chmod, ['base=sha256:1'])).not.toBe(hash);
  });
});

describe('packContext', () => {
  it('packs every entry with its content', async () => {
    const entries = await collectContext(root, sources);
    const extract = tar.extract();
    const seen: Record<string, string> = {};
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c) => chunks.push(c as Buffer));
      stream.on('end', () => {
        seen[header.name] = Buffer.concat(chunks).toString();
        next();
      });
    });
    const finished = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    packContext(entries).pipe(extract);
    await finished;
    expect(Object.keys(seen).sort()).toEqual(entries.map((e) => e.name));
    expect(seen['Dockerfile']).toBe('FROM scratch\n');
  });
});
