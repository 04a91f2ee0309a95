/** `grexal images build`: base, agent and desktop, each skipped when nothing it is built from changed. */
import { GrexalError } from '../errors.ts';
import type { ContainerRuntime, ImageInfo } from '../runtime/runtime.ts';
import { BASE_RECIPE_HASH, buildBase } from './base.ts';
import { collectContext, hashContext, packContext } from './context.ts';
import {
  DOCKERFILE_SPECS,
  hostNodeProblem,
  IMAGE_NAMES,
  IMAGE_TAGS,
  type ImageName,
  imagesToBuild,
  LABEL_CONTEXT_HASH,
  LABEL_IMAGE,
  repoRoot,
} from './specs.ts';

export interface BuildImagesOptions {
  /** Only these images (plus any missing image they are built on); default all three. */
  only?: ImageName[];
  /** Rebuild even when the context hash matches. Default false. */
  force?: boolean;
  /** Progress: which image, which step, elapsed time. */
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Where the Dockerfiles and dist/ are; default the repository this module belongs to. */
  root?: string;
}

export interface BuiltImage {
  name: ImageName;
  tag: string;
  /** `skipped`: an image built from the same inputs was already there. */
  action: 'built' | 'skipped' | 'pulled' | 'bootstrapped';
  id: string;
  sizeBytes: number;
  contextHash: string;
  elapsedMs: number;
}

export interface BuildImagesResult {
  images: BuiltImage[];
}

function prefixed(log: (line: string) => void, name: ImageName, started: number): (line: string) => void {
  return (line) => log(`[${name} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
}

async function buildOne(
  runtime: ContainerRuntime,
  name: ImageName,
  built: Map<ImageName, ImageInfo>,
  options: BuildImagesOptions & { root: string },
): Promise<BuiltImage> {
  const started = Date.now();
  const log = prefixed(options.log, name, started);
  const tag = IMAGE_TAGS[name];
  const existing = await runtime.image(tag);
  const done = (image: ImageInfo, action: BuiltImage['action'], contextHash: string): BuiltImage => {
    built.set(name, image);
    const elapsedMs = Date.now() - started;
    const size = (image.sizeBytes / 1e6).toFixed(0);
    log(`${action} ${tag} (${image.id.slice(7, 19)}, ${size} MB) in ${(elapsedMs / 1000).toFixed(1)} s`);
    return { name, tag, action, id: image.id, sizeBytes: image.sizeBytes, contextHash, elapsedMs };
  };
  if (name === 'base') {
    if (existing && !options.force && existing.labels[LABEL_CONTEXT_HASH] === BASE_RECIPE_HASH) {
      return done(existing, 'skipped', BASE_RECIPE_HASH);
    }
    const base = await buildBase(runtime, { log, signal: options.signal });
    return done(base.image, base.action, BASE_RECIPE_HASH);
  }
  const nodeProblem = hostNodeProblem();
  if (nodeProblem)
    throw new GrexalError('E_IMAGE_BUILD_FAILED', nodeProblem, { details: { path: process.execPath } });
  const spec = DOCKERFILE_SPECS[name];
  const baseTag = IMAGE_TAGS[spec.base];
  const baseImage = built.get(spec.base) ?? (await runtime.image(baseTag));
  if (!baseImage) throw new Error(`unreachable: ${baseTag} is built before ${tag}`);
  const entries = await collectContext(options.root, spec.sources);
  const buildArgs = { BASE: baseTag };
  const contextHash = hashContext(entries, [`base=${baseImage.id}`, `args=${JSON.stringify(buildArgs)}`]);
  if (existing && !options.force && existing.labels[LABEL_CONTEXT_HASH] === contextHash) {
    return done(existing, 'skipped', contextHash);
  }
  const size = entries.reduce((n, e) => n + e.content.length, 0);
  log(`building ${tag} from ${entries.length} files (${(size / 1e6).toFixed(1)} MB) on ${baseTag}`);
  const image = await runtime.buildImage({
    tag,
    context: packContext(entries),
    buildArgs,
    labels: { [LABEL_CONTEXT_HASH]: contextHash, [LABEL_IMAGE]: name },
    onProgress: ({ line }) => log(line),
    signal: options.signal,
  });
  return done(image, 'built', contextHash);
}

/** Builds the images in dependency order; returns what was built or skipped, and how long each took. */
export async function buildImages(
  runtime: ContainerRuntime,
  options: BuildImagesOptions,
): Promise<BuildImagesResult> {
  const root = options.root ?? repoRoot();
  const present = new Set<ImageName>();
  for (const name of IMAGE_NAMES) if (await runtime.image(IMAGE_TAGS[name])) present.add(name);
  const built = new Map<ImageName, ImageInfo>();
  const images: BuiltImage[] = [];
  for (const name of imagesToBuild(options.only, present)) {
    options.signal?.throwIfAborted();
    images.push(await buildOne(runtime, name, built, { ...options, root }));
  }
  return { images };
}
