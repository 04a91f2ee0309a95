/**
 * The browser's targets as the relay's own root session sees them (`Target.setDiscoverTargets`,
 * `tab` targets included): what `/json/list` answers and what `/devtools/page/<id>` may name,
 * without a round trip. Hidden targets (hidden-targets.ts) are neither listed nor found.
 */
import { HiddenTargets } from './hidden-targets.ts';

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
  /** page → the `tab` target that wraps it (see tabOf). */
  private readonly tabs = new Map<string, string>();
  /** A `tab` target whose creation was the last creation: its page's comes next. */
  private lastTab?: string;

  constructor(readonly hidden = new HiddenTargets()) {}

  /** Applies one root event; false when it was not a target event. */
  apply(method: string, params: unknown): boolean {
    const p = (params ?? {}) as { targetInfo?: unknown; targetId?: unknown };
    // Only a creation ends the pairing: between a tab's and its page's, Chromium may say the tab
    // changed (an agent's auto-attach to tabs attaches it at once).
    const lastTab = this.lastTab;
    if (method !== 'Target.targetInfoChanged') this.lastTab = undefined;
    if (method === 'Target.targetCreated' || method === 'Target.targetInfoChanged') {
      const info = targetInfoOf(p.targetInfo);
      if (info && (this.targets.has(info.targetId) || this.targets.size < MAX_TARGETS))
        this.targets.set(info.targetId, info);
      if (info && method === 'Target.targetCreated') {
        if (info.type === 'tab') this.lastTab = info.targetId;
        else if (info.type === 'page' && lastTab !== undefined && this.tabs.size < MAX_TARGETS)
          this.tabs.set(info.targetId, lastTab);
      }
      return true;
    }
    if (method === 'Target.targetDestroyed') {
      if (typeof p.targetId === 'string') {
        this.targets.delete(p.targetId);
        this.tabs.delete(p.targetId);
      }
      return true;
    }
    return false;
  }

  /** A target an agent may name: none of the hidden ones. */
  get(targetId: string): TargetInfo | undefined {
    return this.hidden.targets.has(targetId) ? undefined : this.targets.get(targetId);
  }

  /** Any target, hidden ones included: for the runner only. */
  peek(targetId: string): TargetInfo | undefined {
    return this.targets.get(targetId);
  }

  /**
   * The `tab` target of a page, when Chromium announced it right before the page (it creates
   * both at once, the tab's first, and no other target's creation comes between:
   * `Target.createTarget`'s order).
   */
  tabOf(pageId: string): string | undefined {
    return this.tabs.get(pageId);
  }

  /** What `/json/list` shows, pages first as Chromium orders them (most recent first). */
  listed(): TargetInfo[] {
    return [...this.targets.values()]
      .filter((target) => !UNLISTED_TYPES.has(target.type) && !this.hidden.targets.has(target.targetId))
      .reverse();
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
