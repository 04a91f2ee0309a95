/**
 * A sandbox whose browser sits behind the runner's CDP relay: the relay listens on the host dir's
 * cdp.sock before the container starts, the bootstrap tells the supervisor to forward
 * GREXAL_CDP_URL to it, and it closes with the sandbox. With `takeOver` (grexal dev's local
 * browser), a takeover opens no stream: the agent's CDP access is cut, the caller asks the
 * developer (who works in the browser window itself), `until` is watched over the runner's own CDP
 * channel, and the agent's access comes back when it ends, however it ends.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type BootstrapResult,
  CDP_RELAY_PORT,
  CDP_SOCKET_NAME,
  type RequestTakeoverParams,
  TAKEOVER_DEFAULT_TIMEOUT_MS,
} from '../../sandbox-agent/protocol.ts';
import { CdpRelay, CdpSession, type CdpUpstream } from '../browser/index.ts';
import { watchUntil } from '../takeover/index.ts';

export interface LocalTakeoverRequest extends RequestTakeoverParams {
  sandboxId: string;
  label?: string;
  /**
   * Aborts when the takeover ends without the developer: `until` held, the time ran out, or the
   * agent's call went away; its reason says which, for the prompt to print.
   */
  signal: AbortSignal;
}

export interface SandboxBrowser {
  /** Where the relay finds the browser. */
  upstream: CdpUpstream;
  /** Where agents' downloads go on the browser's machine. Default: downloads denied. */
  downloadsDir?: string;
  /**
   * Takeovers without a stream: resolves once the developer is done in the browser window; rejects
   * with a protocol-coded error (`takeover_cancelled`) otherwise. Absent: takeovers are the
   * runner's usual ones (a desktop sandbox's stream).
   */
  takeOver?: (request: LocalTakeoverRequest) => Promise<void>;
}

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

export class BrowserWiring {
  private relay?: CdpRelay;

  constructor(
    private readonly browser: SandboxBrowser | undefined,
    private readonly logger: Logger,
  ) {}

  /** Listens on `<hostRunDir>/cdp.sock`; nothing without a browser. */
  async start(hostRunDir: string): Promise<void> {
    if (!this.browser) return;
    this.relay = await CdpRelay.start(join(hostRunDir, CDP_SOCKET_NAME), {
      upstream: this.browser.upstream,
      logger: this.logger,
      ...(this.browser.downloadsDir ? { downloadsDir: this.browser.downloadsDir } : {}),
    });
  }

  /** The relay, once started: the runner's own CDP channel and the cut live there. */
  get cdpRelay(): CdpRelay | undefined {
    return this.relay;
  }

  bootstrapFields(): Pick<BootstrapResult, 'cdpRelay'> {
    return this.browser ? { cdpRelay: { port: CDP_RELAY_PORT } } : {};
  }

  /** True when takeovers are local (no stream, no desktop needed). */
  get takesOverLocally(): boolean {
    return this.browser?.takeOver !== undefined;
  }

  /** A local takeover, end to end; rejects with a protocol-coded error unless completed. */
  async takeOverLocally(request: LocalTakeoverRequest): Promise<void> {
    const { relay } = this;
    const takeOver = this.browser?.takeOver;
    if (!relay || !takeOver) throw codedError('takeover_unavailable', 'This sandbox has no local browser.');
    const ended = new AbortController();
    const onCallGone = () => ended.abort(new Error('the agent is no longer waiting'));
    request.signal.addEventListener('abort', onCallGone, { once: true });
    const timeoutMs = request.timeoutMs ?? TAKEOVER_DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(
      () => ended.abort(codedError('takeover_expired', 'The takeover timed out.')),
      timeoutMs,
    );
    // The browser itself went (in dev: its window was closed): nothing left to log in to.
    void relay.browserGone.then(() =>
      ended.abort(codedError('takeover_cancelled', 'The browser closed during the takeover.')),
    );
    // The agent's connections end now, as in a desktop takeover: it reconnects once this returns.
    relay.cut('a takeover is open');
    try {
      // The same watch as a desktop takeover's, over a channel of the runner's own.
      const session = request.until ? new CdpSession(relay.runnerConnection()) : undefined;
      const watched =
        request.until && session
          ? watchUntil(session.call, request.until, ended.signal)
              .then((met) => {
                ended.abort(Object.assign(new Error(`signed in (until.${met} held)`), { met }));
              })
              .finally(() => session.close())
          : undefined;
      watched?.catch((error: unknown) => {
        if (!ended.signal.aborted) this.logger.warn({ err: error }, 'could not watch the takeover until');
      });
      const developer = takeOver({ ...request, signal: ended.signal });
      developer.catch(() => {});
      await Promise.race([developer, abortion(ended.signal)]);
    } catch (error) {
      const reason = ended.signal.reason as { met?: string; code?: string } | undefined;
      if (reason?.met) return;
      if (reason?.code) throw reason;
      throw error;
    } finally {
      clearTimeout(timer);
      request.signal.removeEventListener('abort', onCallGone);
      if (!ended.signal.aborted) ended.abort(new Error('the takeover ended'));
      relay.resume();
    }
  }

  async close(): Promise<void> {
    await this.relay?.close();
  }
}

function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
