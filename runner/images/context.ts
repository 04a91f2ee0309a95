/**
 * Build contexts: an explicit list of files (never a whole tree), hashed so an unchanged image is
 * not rebuilt, and packed with tar-stream. Timestamps are fixed so equal content packs equally.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix, relative, resolve, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { GrexalError } from '../errors.ts';

export interface ContextEntry {
  /** Path inside the build context (POSIX separators). */
  name: string;
  content: Buffer;
  mode: number;
}

/** A file or directory the image needs: relative to the repository root, or absolute. */
export interface ContextSource {
  path: string;
  /** Where it goes in the context; the same relative path when absent. */
  as?: string;
  /** Copy a directory recursively. */
  dir?: boolean;
  /** What to do when it is missing, e.g. "Run `npm run build`." */
  fix: string;
}

/** Never part of a context even inside a listed directory. */
const IGNORED = /(^|\/)(__pycache__|\.DS_Store|\.git)(\/|$)|\.pyc$/;
const FIXED_MTIME = new Date('2024-01-01T00:00:00Z');

function missing(root: string, source: ContextSource): GrexalError {
  return new GrexalError(
    'E_IMAGE_BUILD_FAILED',
    `The build context needs '${source.path}', which is missing under ${root}. ${source.fix}`,
    { details: { path: source.path, root } },
  );
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Reads every listed source into memory (the largest, playwright-core, is ~14 MB). */
export async function collectContext(root: string, sources: ContextSource[]): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  for (const source of sources) {
    const full = resolve(root, source.path);
    const info = await stat(full).catch(() => undefined);
    if (!info || info.isDirectory() !== Boolean(source.dir)) throw missing(root, source);
    const target = source.as ?? source.path;
    const files = source.dir ? await walk(full) : [full];
    for (const file of files) {
      const inside = source.dir ? relative(full, file).split(sep).join('/') : '';
      const name = inside ? posix.join(target, inside) : target;
      if (IGNORED.test(name)) continue;
      const mode = (await stat(file)).mode & 0o111 ? 0o755 : 0o644;
      entries.push({ name, content: await readFile(file), mode });
    }
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** sha256 over names, modes and contents, plus `extra` (the base image id, build args). */
export function hashContext(entries: ContextEntry[], extra: string[] = []): string {
  const hash = createHash('sha256');
  for (const value of extra) hash.update(`extra\0${value}\0`);
  for (const entry of [...entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    hash.update(`${entry.name}\0${entry.mode.toString(8)}\0${entry.content.length}\0`);
    hash.update(entry.content);
  }
  return hash.digest('hex');
}

/** The context as a tar stream for the engine. */
export function packContext(entries: ContextEntry[]): Readable {
  const pack = tar.pack();
  for (const entry of entries) {
    pack.entry({ name: entry.name, mode: entry.mode, mtime: FIXED_MTIME, uid: 0, gid: 0 }, entry.content);
  }
  pack.finalize();
  // tar-stream's streams are streamx streams; the engine client wants a Node stream.
  return pack.pipe(new PassThrough());
}

/** A context that holds only a generated Dockerfile. */
export function dockerfileOnly(text: string): ContextEntry[] {
  return [{ name: 'Dockerfile', content: Buffer.from(text), mode: 0o644 }];
}
