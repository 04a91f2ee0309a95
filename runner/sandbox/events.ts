/** What a sandbox reports while it lives. Every string in an event is masked before it leaves. */
import type { InjectEvent } from '../inject/index.ts';
import type { NetworkEvent } from '../network/index.ts';
import type { TakeoverEvent } from '../takeover/index.ts';

export type SandboxState = 'starting' | 'running' | 'awaiting_takeover' | 'exited' | 'failed';

export type ExitReason = 'exited' | 'timeout' | 'destroyed' | 'oom' | 'failed';

export interface SandboxExit {
  exitCode: number;
  reason: ExitReason;
}

export type SandboxEvent =
  | { type: 'state'; state: SandboxState }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'exit'; exitCode: number; reason: ExitReason }
  | { type: 'error'; code: string; message: string }
  | InjectEvent
  | NetworkEvent
  | TakeoverEvent;

export type EventListener = (event: SandboxEvent & { at: number }) => void;

/** Masks every string inside a value; events are small, so a plain walk is enough. */
export function maskDeep<T>(value: T, mask: (text: string) => string): T {
  if (typeof value === 'string') return mask(value) as T;
  if (Array.isArray(value)) return value.map((item) => maskDeep(item, mask)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDeep(v, mask)])) as T;
  }
  return value;
}

export class EventBus {
  private readonly listeners = new Set<EventListener>();
  private mask: (text: string) => string = (text) => text;

  /** Set once the sandbox's secrets are known; applies to every event from then on. */
  useMask(mask: (text: string) => string): void {
    this.mask = mask;
  }

  on(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: SandboxEvent): void {
    const masked = { ...maskDeep(event, this.mask), at: Date.now() };
    for (const listener of this.listeners) listener(masked);
  }
}
