/**
 * Builds an agent author's image from their directory's Dockerfile. The context is the directory
 * without `.grexal/` (local credentials must never enter an image) and without `.git/`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { GrexalError } from '../errors.ts';
import {
  type ContextEntry,
  hashContext,
  LABEL_CONTEXT_HASH,
  LABEL_IMAGE,
  packContext,
} from '../images/index.ts';
import type { ContainerRuntime } from '../runtime/index.ts';

/** Never sent to the engine: credentials, VCS metadata, local caches. */
const EXCLUDED = /^(\.grexal|\.git|node_modules\/\.cache)(\/|$)/;

export interface AgentImage {
  tag: string;
  /** Built on grexal/desktop (it inherits the desktop's label), so the run needs a desktop. */
  desktop: boolean;
  built: boolean;
}

async function collectDirectory(dir: string): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const name = relative(dir, path).split(sep).join('/');
    if (EXCLUDED.test(name)) continue;
    const mode = (await stat(path)).mode & 0o111 ? 0o755 : 0o644;
    entries.push({ name, content: await readFile(path), mode });
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * `grexal-dev/<directory name>`, lower-cased to what image names allow: separators between
 * letters and digits only, one `.` or `_` (or `__`, or dashes) at a time.
 */
export function devImageTag(dir: string): string {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[._-]{2,}/g, (run) => (/^-+$/.test(run) || run === '__' ? run : '-'))
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return `grexal-dev/${name || 'agent'}`;
}

export async function buildAgentImage(
  runtime: ContainerRuntime,
  dir: string,
  options: { log: (line: string) => void; signal?: AbortSignal },
): Promise<AgentImage> {
  const entries = await collectDirectory(dir);
  if (!entries.some((e) => e.name === 'Dockerfile')) {
    throw new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      `No Dockerfile in ${dir}. Add one that starts FROM grexal/agent (or grexal/desktop for browser logins).`,
    );
  }
  const tag = devImageTag(dir);
  // A rebuilt grexal/agent or grexal/desktop must rebuild the agent on top of it.
  const bases = await Promise.all(['grexal/agent', 'grexal/desktop'].map((t) => runtime.image(t)));
  const hash = hashContext(
    entries,
    bases.map((b) => b?.id ?? 'none'),
  );
  const existing = await runtime.image(tag);
  if (existing?.labels[LABEL_CONTEXT_HASH] === hash) {
    options.log(`image ${tag} is up to date`);
    return { tag, desktop: existing.labels[LABEL_IMAGE] === 'desktop', built: false };
  }
  options.log(`building ${tag} from ${dir}/Dockerfile (${entries.length} files)…`);
  const started = Date.now();
  const image = await runtime.buildImage({
    tag,
    context: packContext(entries),
    labels: { [LABEL_CONTEXT_HASH]: hash },
    onProgress: ({ line }) => {
      if (/^Step \d+\/\d+ :/.test(line)) options.log(`  ${line}`);
    },
    signal: options.signal,
  });
  options.log(`built ${tag} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { tag, desktop: image.labels[LABEL_IMAGE] === 'desktop', built: true };
}
