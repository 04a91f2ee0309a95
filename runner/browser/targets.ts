/**
 * The browser's targets as the relay's own root session sees them (`Target.setDiscoverTargets`):
 * what `/json/list` answers and what `/devtools/page/<id>` may name, without a round trip.
 */

export interface TargetInfo {
  targetId: string;
  type: string;
  title: string;
  url: string;
  attached?: boolean;
  browserContextId?: string;
}

/** Types Chromium's `/json/list` leaves out: the browser itself and the tab wrappers of pages. */
const UNLISTED_TYPES = new Set(['browser', 'tab']);

/** At most this many targets are tracked: a page opening windows in a loop cannot grow it forever. */
const MAX_TARGETS = 10_000;

export class TargetRegistry {
  private readonly targets = new Map<string, TargetInfo>();

  /** Applies one root event; false when it was not a target event. */
  apply(method: string, params: unknown): boolean {
    const p = (params ?? {}) as { targetInfo?: unknown; targetId?: unknown };
    if (method === 'Target.targetCreated' || method === 'Target.targetInfoChanged') {
      const info = targetInfoOf(p.targetInfo);
      if (info && (this.targets.has(info.targetId) || this.targets.size < MAX_TARGETS))
        this.targets.set(info.targetId, info);
      return true;
    }
    if (method === 'Target.targetDestroyed') {
      if (typeof p.targetId === 'string') this.targets.delete(p.targetId);
      return true;
    }
    return false;
  }

  get(targetId: string): TargetInfo | undefined {
    return this.targets.get(targetId);
  }

  /** What `/json/list` shows, pages first as Chromium orders them (most recent first). */
  listed(): TargetInfo[] {
    return [...this.targets.values()].filter((target) => !UNLISTED_TYPES.has(target.type)).reverse();
  }
}

function targetInfoOf(value: unknown): TargetInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['targetId'] !== 'string' || typeof v['type'] !== 'string') return undefined;
  return {
    targetId: v['targetId'],
    type: v['type'],
    title: typeof v['title'] === 'string' ? v['title'] : '',
    url: typeof v['url'] === 'string' ? v['url'] : '',
    ...(typeof v['attached'] === 'boolean' ? { attached: v['attached'] } : {}),
    ...(typeof v['browserContextId'] === 'string' ? { browserContextId: v['browserContextId'] } : {}),
  };
}
