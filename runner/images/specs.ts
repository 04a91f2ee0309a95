/** What each image is built from: its Dockerfile, its base and the files its context holds. */
import { packageRoot } from '../package-root.ts';
import type { ContextSource } from './context.ts';

export type ImageName = 'base' | 'agent' | 'desktop';
export const IMAGE_NAMES: readonly ImageName[] = ['base', 'agent', 'desktop'];

export const IMAGE_TAGS: Record<ImageName, string> = {
  base: 'grexal/base',
  agent: 'grexal/agent',
  desktop: 'grexal/desktop',
};

/** Label holding the hash of everything an image was built from. */
export const LABEL_CONTEXT_HASH = 'grexal.context-hash';
export const LABEL_IMAGE = 'grexal.image';

export interface DockerfileImageSpec {
  name: Exclude<ImageName, 'base'>;
  /** The image whose tag is passed as build argument `BASE`. */
  base: ImageName;
  sources: ContextSource[];
}

const BUILD_FIX = 'Run `npm run build` first (it bundles the desktop helper and the JS client into dist/).';

/** The supervisor, the desktop helper and the ctx clients, in both the agent and the desktop image. */
const AGENT_FILES: ContextSource[] = [
  { path: 'sandbox-agent/supervisor', dir: true, fix: 'Restore the Python supervisor from git.' },
  { path: 'dist/desktop.mjs', fix: BUILD_FIX },
  { path: 'dist/ctx.mjs', fix: BUILD_FIX },
  { path: 'sandbox-agent/python/grexal', dir: true, fix: 'Restore the Python ctx client from git.' },
];

export const DOCKERFILE_SPECS: Record<DockerfileImageSpec['name'], DockerfileImageSpec> = {
  agent: {
    name: 'agent',
    base: 'base',
    sources: [
      { path: 'images/agent/Dockerfile', as: 'Dockerfile', fix: 'Restore it from git.' },
      ...AGENT_FILES,
    ],
  },
  desktop: {
    name: 'desktop',
    // Not the agent: see Dockerfile.desktop for why it shares the agent's layers instead.
    base: 'base',
    sources: [
      { path: 'Dockerfile.desktop', as: 'Dockerfile', fix: 'Restore it from git.' },
      ...AGENT_FILES,
      // Only this one package from node_modules: agents drive Chromium with it; no npm inside.
      // The host's playwright-core (>= 1.62) refuses Node 18, bookworm's node: the image gets the
      // last release that runs on it, installed as the alias `playwright-core-node18`.
      { path: 'node_modules/playwright-core-node18', dir: true, fix: 'Run `npm ci` first.' },
    ],
  },
};

/** Which images to build: the ones asked for plus any missing image they are built on. */
export function imagesToBuild(
  only: readonly ImageName[] | undefined,
  present: ReadonlySet<ImageName>,
): ImageName[] {
  const wanted = new Set<ImageName>(only && only.length > 0 ? only : IMAGE_NAMES);
  for (const name of ['desktop', 'agent'] as const) {
    const base = DOCKERFILE_SPECS[name].base;
    if (wanted.has(name) && !present.has(base)) wanted.add(base);
  }
  return IMAGE_NAMES.filter((n) => wanted.has(n));
}

/** The repository root, where the build contexts' files are. */
export const repoRoot = packageRoot;
