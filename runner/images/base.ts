/**
 * `grexal/base`: Debian bookworm. From the registry's `debian:bookworm-slim` where one answers,
 * otherwise bootstrapped offline; either way tagged `grexal/base` with the same recipe label.
 */
import { createHash } from 'node:crypto';
import type { ContainerRuntime, ImageInfo } from '../runtime/runtime.ts';
import { dockerfileOnly, packContext } from './context.ts';
import { debootstrap, SUITE } from './debootstrap.ts';
import { IMAGE_TAGS, LABEL_CONTEXT_HASH, LABEL_IMAGE } from './specs.ts';

export const REGISTRY_BASE = 'debian:bookworm-slim';
export const LABEL_BASE_SOURCE = 'grexal.base-source';
/** A registry that does not answer must not hold the build up for long; a slim pull fits well inside. */
const PULL_TIMEOUT_MS = 60_000;
const PATH_ENV = 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Changes when the recipe changes; both routes produce an image with this label. */
export const BASE_RECIPE_HASH = createHash('sha256')
  .update(`grexal/base v2 debian ${SUITE} minbase|${REGISTRY_BASE}`)
  .digest('hex');

export interface BaseResult {
  image: ImageInfo;
  action: 'pulled' | 'bootstrapped';
}

interface BaseOptions {
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * debootstrap installs the suite's point release only: the security and updates suites are applied
 * here. The registry's slim image is rebuilt by Debian with them already.
 */
const UPGRADE =
  'RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin';

function labelBuild(runtime: ContainerRuntime, from: string, source: string, options: BaseOptions) {
  const upgrade = source === 'debootstrap' ? `${UPGRADE}\n` : '';
  return runtime.buildImage({
    tag: IMAGE_TAGS.base,
    context: packContext(dockerfileOnly(`FROM ${from}\n${PATH_ENV}\n${upgrade}CMD ["bash"]\n`)),
    labels: { [LABEL_CONTEXT_HASH]: BASE_RECIPE_HASH, [LABEL_IMAGE]: 'base', [LABEL_BASE_SOURCE]: source },
    onProgress: ({ line }) => options.log(line),
    signal: options.signal,
  });
}

/** Tries the registry; undefined (with the reason logged) when it cannot be reached. */
async function fromRegistry(runtime: ContainerRuntime, options: BaseOptions): Promise<ImageInfo | undefined> {
  options.log(`trying the registry: FROM ${REGISTRY_BASE}`);
  const deadline = AbortSignal.timeout(PULL_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  try {
    // A build that starts FROM the registry image pulls it: no pull call needed in the runtime.
    return await labelBuild(runtime, REGISTRY_BASE, 'registry', { log: () => {}, signal });
  } catch (error) {
    options.signal?.throwIfAborted();
    const reason = (error as Error).message.split('\n')[0] ?? '';
    options.log(`registry unavailable (${reason.slice(0, 200)}); bootstrapping offline`);
    return undefined;
  }
}

async function fromDebootstrap(runtime: ContainerRuntime, options: BaseOptions): Promise<ImageInfo> {
  const rootfs = await debootstrap(options);
  try {
    options.log(`importing the root filesystem as ${IMAGE_TAGS.base}`);
    const { stream, done, kill } = rootfs.tar();
    // A failed import leaves tar blocked on a full pipe: stop it before the directory goes.
    const [imported] = await Promise.all([
      runtime.importImage(stream, IMAGE_TAGS.base, { signal: options.signal }),
      done,
    ]).catch((error: unknown) => {
      kill();
      throw error;
    });
    // `docker import` cannot set labels through the runtime interface: one metadata-only step does.
    return await labelBuild(runtime, imported.id, 'debootstrap', options);
  } finally {
    await rootfs.cleanup();
  }
}

export async function buildBase(runtime: ContainerRuntime, options: BaseOptions): Promise<BaseResult> {
  const pulled = await fromRegistry(runtime, options);
  if (pulled) return { image: pulled, action: 'pulled' };
  return { image: await fromDebootstrap(runtime, options), action: 'bootstrapped' };
}
