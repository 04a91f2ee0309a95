/**
 * Refuses now what would otherwise only fail later, in the background: an image or an OCI runtime
 * the engine does not have. Found images are remembered for a few seconds and concurrent lookups
 * share one engine call, so a burst of creates costs the engine one inspect, not one each.
 */
import { GrexalError } from '../errors.ts';
import type { ContainerRuntime, EngineInfo } from '../runtime/index.ts';

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export class Preflight {
  private readonly images = new Map<string, Cached<boolean>>();
  private info?: Cached<EngineInfo>;

  constructor(
    private readonly runtime: Pick<ContainerRuntime, 'image' | 'info'>,
    /** How long a found image or the engine's runtimes are trusted. Default 10000. */
    private readonly ttlMs = 10_000,
  ) {}

  async check(image: string, runtime: string | undefined): Promise<void> {
    const [found, info] = await Promise.all([
      this.imageExists(image),
      runtime === undefined ? undefined : this.engineInfo(),
    ]);
    if (!found) {
      throw new GrexalError(
        'E_IMAGE_NOT_FOUND',
        `Image '${image}' is not in the engine. Run \`grexal images build\` (or build/pull '${image}') on the runner's machine.`,
      );
    }
    if (info && runtime !== undefined && !info.runtimes.includes(runtime)) {
      throw new GrexalError(
        'E_RUNTIME_NOT_FOUND',
        `Runtime '${runtime}' is not registered with the engine (it has: ${info.runtimes.join(', ')}). Run \`grexal doctor --fix\` on the runner's machine to register runsc, or leave runtime out.`,
      );
    }
  }

  private imageExists(image: string): Promise<boolean> {
    const now = Date.now();
    const cached = this.images.get(image);
    if (cached && now - cached.at < this.ttlMs) return cached.value;
    const value = this.runtime.image(image).then((info) => info !== undefined);
    this.images.set(image, { at: now, value });
    // Only a found image is remembered: one built a moment later must be usable at once.
    value.then(
      (found) => !found && this.images.get(image)?.value === value && this.images.delete(image),
      () => this.images.get(image)?.value === value && this.images.delete(image),
    );
    if (this.images.size > 256) this.images.delete(this.images.keys().next().value!);
    return value;
  }

  private engineInfo(): Promise<EngineInfo> {
    const now = Date.now();
    if (this.info && now - this.info.at < this.ttlMs) return this.info.value;
    const value = this.runtime.info();
    const entry = { at: now, value };
    this.info = entry;
    value.catch(() => {
      if (this.info === entry) this.info = undefined;
    });
    return value;
  }
}
