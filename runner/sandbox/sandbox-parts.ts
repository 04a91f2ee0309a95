/**
 * What one sandbox made on the host and in the engine: its host directory, its container, its ctx
 * server and, on a desktop, its browser container. Each is kept as soon as it exists
 * (provisionContainer sets the first three), so that the one removal, on every path, finds all.
 */
import { type GrexalError, toGrexalError } from '../errors.ts';
import type { CtxServer } from '../inject/index.ts';
import { type ContainerHandle, DEFAULT_CPU_SHARES } from '../runtime/index.ts';
import { DesktopBrowser, type DesktopBrowserDeps } from './desktop-browser.ts';
import { type HostRunDir, removeHostRunDir } from './host-dir.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import type { ProvisionedParts } from './provision.ts';

export interface DesktopStart {
  sandboxId: string;
  options: ResolvedSandboxOptions;
  /** Settles with the engine's answer to the agent's start: the browser joins its namespace then. */
  agentStart: Promise<void>;
  deps: DesktopBrowserDeps;
  /** Whether the sandbox's cleanup has begun: a browser up after it must not outlive the sandbox. */
  ended(): boolean;
  /** A failure while the sandbox lives (logged here first), for the sandbox's events. */
  onFailure(failure: GrexalError): void;
}

/** The wiring the sandbox closes in the same round as its parts (NetworkWiring, BrowserWiring). */
interface Closable {
  close(): Promise<unknown>;
}

export class SandboxParts implements ProvisionedParts {
  hostRunDir?: HostRunDir;
  container?: ContainerHandle;
  ctxServer?: CtxServer;
  /** A desktop sandbox's browser container, relay and the runner's CDP session. */
  desktop?: DesktopBrowser;
  /** Settles once the desktop's browser answers (at once without a desktop); the bootstrap waits for it. */
  desktopReady: Promise<unknown> = Promise.resolve();

  /** Starts the desktop's browser container beside the agent's (kept already); sets `desktopReady`. */
  startDesktop(start: DesktopStart): void {
    const { logger } = start.deps;
    const ready = DesktopBrowser.start(
      start.sandboxId,
      start.options,
      this.container!,
      start.agentStart,
      this.hostRunDir!.path,
      start.deps,
    ).then(async (desktop) => {
      // The sandbox went while the browser started: it must not outlive it.
      if (start.ended()) {
        await desktop.close();
        throw new Error('the sandbox ended');
      }
      this.desktop = desktop;
    });
    ready.catch((error: unknown) => {
      if (start.ended()) return;
      const failure = toGrexalError(error);
      logger.error({ err: failure }, "the sandbox's browser did not start");
      start.onFailure(failure);
    });
    this.desktopReady = ready;
  }

  /** The default CPU weight back on every container (a pool entry's, once it is ready). */
  async restoreCpuShares(): Promise<void> {
    if (!this.container) return;
    await Promise.all([
      this.container.setCpuShares(DEFAULT_CPU_SHARES),
      this.desktop?.setCpuShares(DEFAULT_CPU_SHARES),
    ]);
  }

  /**
   * Removes every part, each whatever the others do, in one round with the sandbox's `network`
   * and `browser` wiring (closed first and fourth, as they always were); resolves with each
   * step's outcome.
   */
  async remove(network: Closable, browser: Closable): Promise<PromiseSettledResult<unknown>[]> {
    const results: PromiseSettledResult<unknown>[] = await Promise.allSettled([
      network.close(),
      this.container?.remove(),
      this.ctxServer?.close(),
      browser.close(),
      // Removing the agent's container ends a browser container still starting in its namespace.
      this.desktopReady.then(
        () => this.desktop?.close(),
        () => {},
      ),
    ]);
    // After the container: its bind of the tmpfs goes with it. A failure here (umount) must not
    // cost the rest of the cleanup; the reaper of the next runner retries it.
    if (this.hostRunDir) results.push(...(await Promise.allSettled([removeHostRunDir(this.hostRunDir)])));
    return results;
  }
}
