/**
 * A sandbox's start, up to its container running and wired: the host directory, the container's
 * create and attach, the ctx server (and CDP relay) in the directory's tmpfs, the start, and the
 * network's wiring. Each part is handed to the sandbox as soon as it exists, so that its one
 * cleanup finds everything, whatever failed after.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { toGrexalError } from '../errors.ts';
import { type CtxHandlers, CtxServer } from '../inject/index.ts';
import type { ContainerHandle, ContainerOutput, ContainerRuntime } from '../runtime/index.ts';
import { mark } from '../timings.ts';
import type { BrowserWiring } from './browser-wiring.ts';
import { createHostRunDir, type HostRunDir } from './host-dir.ts';
import type { NetworkWiring } from './network-wiring.ts';
import { OnceSignal } from './once-signal.ts';
import type { ResolvedSandboxOptions } from './options.ts';

/** What a start makes that must be removed, set as each is made. */
export interface ProvisionedParts {
  hostRunDir?: HostRunDir;
  container?: ContainerHandle;
  ctxServer?: CtxServer;
}

export interface ProvisionInput {
  sandboxId: string;
  runtime: ContainerRuntime;
  stateDir: string;
  logger: Logger;
  options: ResolvedSandboxOptions;
  /** The containers' CPU weight while they start (a pool entry's); undefined: the engine's default. */
  cpuShares?: number;
  network: NetworkWiring;
  browser: BrowserWiring;
  handlers: CtxHandlers;
  /** Each part as soon as it exists: the sandbox's cleanup must remove it if a later step fails. */
  keep: ProvisionedParts;
  /**
   * Called once the container is created and attached, just before its start goes out: what the
   * supervisor may read as soon as it runs (the deadline in its bootstrap) is fixed here.
   * `agentStart` settles with the engine's answer to the start.
   */
  beforeStart(output: ContainerOutput, agentStart: Promise<void>): void;
}

/**
 * Resolves with the container once it runs and its network is wired. On a failure, the network's
 * host side is settled (never begun if the start had not gone out) before the error is rethrown;
 * removing what was kept is the caller's.
 */
export async function provisionContainer(
  input: ProvisionInput,
  options: { signal?: AbortSignal },
): Promise<ContainerHandle> {
  const { runtime, stateDir, logger, network } = input;
  // The engine's calls are the start's critical path, and every spawn from this process holds
  // the event loop for its fork: the create goes out first, the tmpfs mount (the start waits for
  // ctx.sock in it) a turn of the loop later; the network's host side (its helpers and tools)
  // once the start is on its way. The container runs unwired meanwhile (loopback only) and the
  // bootstrap, so the agent, waits for the wiring: only the wiring needs both.
  const createSent = new OnceSignal();
  const startSent = new OnceSignal();
  const preparing = startSent.fired
    .then((go) => (go ? network.prepare() : undefined))
    .then(() => mark('network prepared'));
  preparing.catch(() => {});
  try {
    const hostRunDir = await createHostRunDir(
      stateDir,
      runtime.instanceId,
      input.sandboxId,
      logger,
      createSent.fired,
    );
    input.keep.hostRunDir = hostRunDir;
    mark('host dir made');
    const spec = {
      sandboxId: input.sandboxId,
      image: input.options.image,
      hostRunDir: hostRunDir.path,
      limits: input.options.limits,
      runtime: input.options.runtime,
      desktop: input.options.desktop !== undefined,
      cpuShares: input.cpuShares,
    };
    // The directory's tmpfs and ctx.sock in it (and the CDP relay) are made while the engine
    // creates the container (and attaches to it: nothing to wait for in between).
    const creating = runtime.createContainer(spec, options).then(async (container) => {
      mark('container created');
      // Kept at once, so that cleanUp removes it if the attach or a twin failed.
      input.keep.container = container;
      const output = await container.attach();
      mark('attached');
      return { container, output };
    });
    createSent.fireSoon();
    const [created, listening, relayed] = await Promise.allSettled([
      creating,
      hostRunDir.mounted.then(() => {
        mark('tmpfs mounted');
        return CtxServer.listen(join(hostRunDir.path, 'ctx.sock'), input.handlers, {
          onInternalError: (error, method) =>
            logger.error({ err: toGrexalError(error), method }, 'ctx call failed'),
        }).then((server) => {
          mark('ctx listening');
          return server;
        });
      }),
      hostRunDir.mounted.then(() => input.browser.start(hostRunDir.path)),
    ]);
    if (listening.status === 'fulfilled') input.keep.ctxServer = listening.value;
    if (created.status === 'rejected') throw created.reason;
    if (listening.status === 'rejected') throw listening.reason;
    if (relayed.status === 'rejected') throw relayed.reason;
    const { container, output } = created.value;
    let agentStarted!: (starting: Promise<void>) => void;
    const agentStart = new Promise<void>((resolve, reject) => {
      agentStarted = (starting) => starting.then(resolve, reject);
    });
    input.beforeStart(output, agentStart);
    mark('start sent');
    const starting = container.start().then(() => mark('container started'));
    startSent.fireSoon();
    agentStarted(starting);
    // Set before anything can answer: a bootstrap that comes in waits for this wiring.
    const wired = network.wireAfter(
      Promise.all([starting, preparing]).then(() => {}),
      () => container.pid(),
    );
    await starting;
    await wired;
    mark('network wired');
    options.signal?.throwIfAborted();
    return container;
  } catch (error) {
    // Failed before the start went out: the network's side was never begun, and is not now.
    createSent.cancel();
    startSent.cancel();
    // What the network made must be there for cleanUp to remove it.
    await preparing.catch(() => {});
    throw error;
  }
}
