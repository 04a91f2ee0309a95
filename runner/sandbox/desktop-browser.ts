/**
 * Everything of a desktop sandbox's browser on the runner's side: the browser container, the CDP
 * relay the agent reaches it through (listening on `<agent host dir>/cdp.sock`, which the
 * supervisor forwards to GREXAL_CDP_URL), and the runner's own never-cut CDP session, over which a
 * takeover's clean room and its `until` watch run.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CDP_SOCKET_NAME } from '../../sandbox-agent/protocol.ts';
import { CdpRelay, CdpSession } from '../browser/index.ts';
import type { ContainerHandle, ContainerRuntime } from '../runtime/index.ts';
import { BrowserContainer } from './browser-container.ts';
import { type CleanRoom, type CleanRoomDeps, openCleanRoom } from './clean-room.ts';
import type { ResolvedSandboxOptions } from './options.ts';

export interface DesktopBrowserDeps {
  runtime: ContainerRuntime;
  stateDir: string;
  logger: Logger;
  /** The browser container's image. Default grexal/desktop. */
  image?: string;
  /** Its CPU weight from its create on (a pool entry's; runtime.ts ContainerSpec.cpuShares). */
  cpuShares?: number;
}

export class DesktopBrowser {
  private closing?: Promise<void>;
  private cleanRoom?: CleanRoom;

  private constructor(
    private readonly container: BrowserContainer,
    private readonly relay: CdpRelay,
    readonly cdp: CdpSession,
    private readonly logger: Logger,
  ) {}

  /** Starts the browser container and the relay; on failure removes what it made. */
  static async start(
    sandboxId: string,
    options: ResolvedSandboxOptions,
    agent: ContainerHandle,
    agentStarted: Promise<unknown>,
    agentRunDir: string,
    deps: DesktopBrowserDeps,
  ): Promise<DesktopBrowser> {
    const logger = deps.logger.child({ component: 'browser' });
    const container = await BrowserContainer.start(sandboxId, options, agent, agentStarted, {
      runtime: deps.runtime,
      stateDir: deps.stateDir,
      logger,
      image: deps.image,
      cpuShares: deps.cpuShares,
    });
    try {
      const relay = await CdpRelay.start(join(agentRunDir, CDP_SOCKET_NAME), {
        upstream: container.upstream(),
        logger,
      });
      const browser = new DesktopBrowser(container, relay, new CdpSession(relay.runnerConnection()), logger);
      // The clean room's spare tab, made in the background and hidden from the agent by the relay.
      relay.spare.enable();
      void container.wait().then(() => {
        if (!browser.closing) logger.warn('the browser container ended: the sandbox has no browser any more');
      });
      return browser;
    } catch (error) {
      await container.remove();
      throw error;
    }
  }

  /** The browser container's CPU weight (a claimed pool entry's goes back to the default). */
  setCpuShares(shares: number): Promise<void> {
    return this.container.setCpuShares(shares);
  }

  get vncSocketPath(): string {
    return this.container.vncSocketPath;
  }

  /**
   * Freezes and cuts off the agent, loads its page afresh; `close()` on the result undoes it.
   * `when`: onShown and freezeWhen of clean-room.ts.
   */
  async openCleanRoom(
    agent: ContainerHandle,
    when: Pick<CleanRoomDeps, 'onShown' | 'freezeWhen'> = {},
  ): Promise<CleanRoom> {
    this.cleanRoom = await openCleanRoom({
      agent,
      gate: this.relay,
      cdp: this.cdp.call,
      cdpEvents: this.cdp.onEvent,
      logger: this.logger,
      spare: this.relay.spare,
      ...when,
    });
    return this.cleanRoom;
  }

  /** Thaws the agent if a clean room holds it (before a stop: a frozen container takes no signal). */
  async thaw(): Promise<void> {
    await this.cleanRoom?.close({ nextSpare: false });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.cdp.close();
      await Promise.allSettled([this.relay.close()]);
      await this.container.remove();
    })();
    return this.closing;
  }
}
