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

/**
 * The Node that runs this build goes into both images as /usr/local/bin/node (an absolute path:
 * outside the repository). Bookworm's nodejs 18 is built without Node's startup snapshot and code
 * cache (`node_use_node_snapshot` false) and links libnode at every exec: `node -e 0` took
 * 105–125 ms in the sandbox, the host's Node 20 28–37 ms. Every Node agent pays that at its start,
 * warm or cold.
 */
const HOST_NODE: ContextSource = {
  path: process.execPath,
  as: 'node',
  fix: 'Run the build with Node 20 or later.',
};

/**
 * Why the host's Node cannot go into the images, if it cannot: a build that links a shared libnode
 * (Debian's nodejs package, for one) needs libraries the images do not hold.
 */
export function hostNodeProblem(
  variables: { node_shared?: unknown } = process.config.variables as { node_shared?: unknown },
): string | undefined {
  if (!variables.node_shared) return undefined;
  return `The images take the Node that runs this build (${process.execPath}), but it is linked to a shared libnode, which they do not hold. Run \`grexal images build\` with a standalone Node 20 (from nodejs.org, nvm or NodeSource).`;
}

/** The supervisor, the desktop helper and the ctx clients, in both the agent and the desktop image. */
const AGENT_FILES: ContextSource[] = [
  HOST_NODE,
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
      { path: 'node_modules/playwright-core', dir: true, fix: 'Run `npm ci` first.' },
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
