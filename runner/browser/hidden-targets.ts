/**
 * Targets the agent must not see: the spare tab (spare-tab.ts) and its `tab` wrapper, and the
 * sessions Chromium auto-attached to them for an agent. Pure decisions over one set of ids: what
 * the relay refuses of an agent's message, and what of the browser's messages reaches an agent.
 *
 * Why hide by id rather than by anything else: a target id and a session id are 32 random hex
 * digits that only CDP hands out, so an agent can name one only after some message showed it.
 * Every Target event and reply that can carry them is filtered here; a message that names one
 * anyway (learned some other way, a trace) is refused as if the target did not exist.
 */
import type { ClientMessage, UpstreamMessage } from './mux-client.ts';

export class HiddenTargets {
  /** Target ids: the spare page and its tab target. */
  readonly targets = new Set<string>();
  /** Sessions Chromium attached an agent to a hidden target with (auto-attach), detached since. */
  readonly sessions = new Set<string>();

  get empty(): boolean {
    return this.targets.size === 0 && this.sessions.size === 0;
  }

  names(value: unknown): boolean {
    return typeof value === 'string' && (this.targets.has(value) || this.sessions.has(value));
  }
}

/** Chromium's own answers for an id it does not know. */
export const NO_SUCH_TARGET = { code: -32602, message: 'No target with given id found' };
export const NO_SUCH_SESSION = { code: -32001, message: 'Session with given id not found.' };

/**
 * The error an agent's message is answered with when it names a hidden target or session: in its
 * own sessionId, or in any top-level parameter (targetId, sessionId, and whatever a method adds:
 * every CDP method that names a target or session does so at the top of its params).
 */
export function refuseNamingHidden(
  message: ClientMessage,
  hidden: HiddenTargets,
): { code: number; message: string } | undefined {
  if (hidden.empty) return undefined;
  if (message.sessionId !== undefined && hidden.names(message.sessionId)) return NO_SUCH_SESSION;
  for (const [key, value] of Object.entries(message.params ?? {}))
    if (hidden.names(value)) return key.toLowerCase().includes('session') ? NO_SUCH_SESSION : NO_SUCH_TARGET;
  return undefined;
}

/** What becomes of one message from the browser on its way to an agent. */
export type AgentDelivery =
  | { deliver: UpstreamMessage }
  | {
      drop: true;
      /** A session auto-attached to a hidden target: detach it (on `parent`, where it was attached). */
      detach?: { sessionId: string; parent?: string; waitingForDebugger: boolean };
    };

function targetIdOf(params: Record<string, unknown> | undefined): unknown {
  const info = params?.['targetInfo'];
  if (typeof info === 'object' && info !== null) return (info as Record<string, unknown>)['targetId'];
  return params?.['targetId'];
}

/**
 * One event for an agent: dropped when it names a hidden target or session (created, changed,
 * destroyed, crashed, attached, detached, a message from it); an attach is undone as well.
 */
export function screenEventForAgent(message: UpstreamMessage, hidden: HiddenTargets): AgentDelivery {
  if (hidden.empty || typeof message.method !== 'string' || !message.method.startsWith('Target.'))
    return { deliver: message };
  const { params } = message;
  const child = params?.['sessionId'];
  if (message.method === 'Target.attachedToTarget') {
    if (!hidden.names(targetIdOf(params)) || typeof child !== 'string') return { deliver: message };
    // Remember the session first: whatever it sends until the detach is through is dropped too.
    hidden.sessions.add(child);
    return {
      drop: true,
      detach: {
        sessionId: child,
        ...(typeof message.sessionId === 'string' ? { parent: message.sessionId } : {}),
        waitingForDebugger: params?.['waitingForDebugger'] === true,
      },
    };
  }
  if (hidden.names(targetIdOf(params)) || hidden.names(child)) return { drop: true };
  return { deliver: message };
}

/**
 * One reply for an agent: a target list without the hidden ones, a hidden target's info as
 * Chromium answers an unknown id. (Calls that name a hidden target never get this far.)
 */
export function screenReplyForAgent(message: UpstreamMessage, hidden: HiddenTargets): UpstreamMessage {
  const result = message.result;
  if (hidden.empty || result === undefined) return message;
  const infos = result['targetInfos'];
  if (Array.isArray(infos)) {
    const kept = infos.filter(
      (info) => !hidden.names((info as Record<string, unknown> | null)?.['targetId']),
    );
    return kept.length === infos.length ? message : { ...message, result: { ...result, targetInfos: kept } };
  }
  if (hidden.names(targetIdOf(result)) || hidden.names(result['sessionId'])) {
    const { result: _dropped, ...rest } = message;
    return { ...rest, error: NO_SUCH_TARGET };
  }
  return message;
}
