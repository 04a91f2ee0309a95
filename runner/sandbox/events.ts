/** What a sandbox reports while it lives. Every string in an event is masked before it leaves. */
import type { InjectEvent } from '../inject/index.ts';
import type { NetworkEvent } from '../network/index.ts';
import type { TakeoverEvent } from '../takeover/index.ts';

/** Every state a sandbox can be in; the API's schema is built from this list. */
export const SANDBOX_STATES = [
  'starting',
  'running',
  'awaiting_takeover',
  'awaiting_credentials',
  'exited',
  'failed',
] as const;

export type SandboxState = (typeof SANDBOX_STATES)[number];

/**
 * Why a sandbox ended. `oom`: the cgroup recorded a process of the sandbox (the agent or a child)
 * killed for memory. `engine_lost`: the engine crashed, hung or became unreachable while it ran.
 * `engine_stopped`: the engine shut down cleanly, stopping the sandbox with its own signal.
 * `killed`: a signal through the engine that neither the runner nor the agent sent (an operator's
 * `docker stop` or `docker kill`).
 */
export const EXIT_REASONS = [
  'exited',
  'timeout',
  'destroyed',
  'oom',
  'failed',
  'engine_lost',
  'engine_stopped',
  'killed',
] as const;

export type ExitReason = (typeof EXIT_REASONS)[number];

/** The reasons whose sandbox ends in state `failed` rather than `exited`. */
export function failedReason(reason: ExitReason): boolean {
  return (
    reason === 'failed' || reason === 'engine_lost' || reason === 'engine_stopped' || reason === 'killed'
  );
}

export interface SandboxExit {
  /** The agent's exit code as the engine reported it; -1 when it never ran or the engine went first. */
  exitCode: number;
  reason: ExitReason;
  /** The cgroup's record that a process of the sandbox was killed for memory, whatever the exit code. */
  oomKilled: boolean;
  /** For the engine reasons: what happened, the engine's endpoint and the fix. */
  message?: string;
}

export type SandboxEvent =
  | { type: 'state'; state: SandboxState }
  | { type: 'log'; stream: 'stdout' | 'stderr'; text: string }
  | ({ type: 'exit' } & SandboxExit)
  | { type: 'error'; code: string; message: string }
  /** Once, when the run is bound: `warm` when a pool entry serves it, false for a cold create. */
  | { type: 'claimed'; warm: boolean }
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
