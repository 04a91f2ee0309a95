/**
 * The agent's `request_takeover`, from the sandbox's side: where the user logs in (a desktop
 * sandbox's streamed browser container, or grexal dev's local window) and the clean room around
 * a streamed takeover (docs/browser.md): the agent's CDP cut at once, then, while the link
 * travels, its container frozen and its page loaded afresh (the screen shown once the page is,
 * the user's input let through once both are); thawed and let back in before the agent hears
 * the answer, however the takeover ends.
 */
import type { Logger } from 'pino';
import { type RequestTakeoverParams, requestTakeoverParamsSchema } from '../../sandbox-agent/protocol.ts';
import { toGrexalError } from '../errors.ts';
import type { ContainerHandle } from '../runtime/index.ts';
import type { BrowserWiring } from './browser-wiring.ts';
import type { DesktopBrowser } from './desktop-browser.ts';
import type { SandboxTakeovers } from './ports.ts';

export interface TakeoverCallContext {
  sandboxId: string;
  logger: Logger;
  /** The runner's takeover service; absent where takeovers are not served (library runs). */
  takeovers?: SandboxTakeovers;
  /** A desktop sandbox's browser container and the agent's container, once both run. */
  streamed?: { desktop: DesktopBrowser; container: ContainerHandle };
  /** grexal dev's local browser, which takes a takeover without a stream. */
  browser: BrowserWiring;
  connectionLabel(connectionId: string): string | undefined;
  /** One takeover at a time: the sandbox shows `awaiting_takeover` while one is open. */
  open: { isOpen(): boolean; set(open: boolean): void };
}

/** The latest the agent is frozen after the user's page is shown, if no viewer streams by then. */
const FREEZE_LATEST_MS = 1000;

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

export async function requestTakeover(
  context: TakeoverCallContext,
  params: unknown,
  signal: AbortSignal,
): Promise<{ outcome: 'completed' }> {
  const request = parseRequest(params);
  const { takeovers, streamed, browser, open } = context;
  if (!streamed && !browser.takesOverLocally) {
    throw codedError('takeover_unavailable', 'Takeovers need a desktop sandbox (--desktop).');
  }
  // Before the clean room: a second request must not cut or freeze anything again.
  if (open.isOpen()) throw codedError('takeover_in_progress', 'A takeover is already open for this sandbox.');
  const label = request.connectionId ? context.connectionLabel(request.connectionId) : undefined;
  open.set(true);
  // Cut off at once (openCleanRoom cuts before its first await). The stream shows the screen once
  // the fresh page is in place (`shown`) and lets the user's input through once the whole room is
  // made (`ready`: the agent frozen too).
  let onShown!: () => void;
  const shownOnce = new Promise<void>((resolve) => {
    onShown = resolve;
  });
  // The freeze waits until the user's first frame is out (nothing the user types passes before
  // it): its engine call then does not compete with what the user waits for first. At the latest
  // FREEZE_LATEST_MS after the page is shown, or when the takeover ends.
  let freezeNow!: () => void;
  const freezeWhen = new Promise<void>((resolve) => {
    freezeNow = resolve;
  });
  void shownOnce.then(() => setTimeout(freezeNow, FREEZE_LATEST_MS).unref());
  const room = streamed?.desktop.openCleanRoom(streamed.container, { onShown, freezeWhen });
  const ready = room?.then(() => undefined);
  // A room that fails before its page is shown fails `shown` with it.
  const shown = room ? Promise.race([shownOnce, ready]) : undefined;
  // Seen by the stream if one connects; a failure ends the takeover below either way.
  ready?.catch(() => {});
  shown?.catch(() => {});
  room?.catch((error: unknown) => {
    context.logger.error({ err: toGrexalError(error) }, 'could not prepare the clean room');
    takeovers?.cancelAllFor(context.sandboxId, 'clean_room');
  });
  try {
    if (!streamed || !takeovers) {
      // grexal dev's local browser: no stream, the developer works in the window itself.
      await browser.takeOverLocally({ ...request, sandboxId: context.sandboxId, label, signal });
    } else {
      await takeovers.request({
        ...request,
        sandboxId: context.sandboxId,
        label,
        vncSocketPath: streamed.desktop.vncSocketPath,
        browser: streamed.desktop.cdp.call,
        ready,
        shown,
        onStreaming: freezeNow,
        signal,
      });
    }
    return { outcome: 'completed' };
  } finally {
    freezeNow();
    // Thawed and let back in before the answer: the agent's next act is to reconnect.
    await room?.then(
      (made) => made.close(),
      () => {},
    );
    open.set(false);
  }
}

function parseRequest(params: unknown): RequestTakeoverParams {
  const parsed = requestTakeoverParamsSchema.safeParse(params);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  throw codedError('invalid_request', `request_takeover: ${path}${issue?.message ?? 'invalid'}.`);
}
