/**
 * What the API knows of one sandbox, from creation until it is forgotten: its journal of events,
 * its state, its open takeover, and how it ended. It outlives the Sandbox object, so that late
 * readers get the history and a second DELETE still answers 204.
 */
import { policyToJson } from '../network/index.ts';
import {
  failedReason,
  type Sandbox,
  type SandboxEvent,
  type SandboxExit,
  type SandboxState,
} from '../sandbox/index.ts';
import { EventJournal, type JournalLimits } from './journal.ts';
import type { OpenTakeover, SandboxView } from './protocol.ts';

/** What the metrics want to hear about. */
export interface RecordObserver {
  running?(startSeconds: number): void;
  takeoverEnded?(outcome: string): void;
  connect?(mode: string, durationMs: number | undefined): void;
  sandboxError?(code: string): void;
  network?(decision: string): void;
}

const TERMINAL: ReadonlySet<SandboxState> = new Set(['exited', 'failed']);

export class SandboxRecord {
  readonly journal: EventJournal;
  readonly createdAt = Date.now();
  private currentState: SandboxState = 'starting';
  private exit?: SandboxExit;
  private endedAt?: number;
  private takeover?: OpenTakeover;
  private startPromise?: Promise<void>;
  /** Settles once the `exit` event is in the journal. */
  readonly ended: Promise<void>;

  constructor(
    readonly sandbox: Sandbox,
    readonly metadata: Record<string, string>,
    private readonly observer: RecordObserver = {},
    journalLimits?: JournalLimits,
  ) {
    this.journal = new EventJournal(journalLimits);
    this.journal.append({ type: 'state', state: 'starting', at: this.createdAt });
    sandbox.onEvent((event) => this.onEvent(event));
    // The exit event comes from `exited`, which settles after every other event on every path
    // (a failed start has no exit event of its own): `exit` is always the last event.
    this.ended = sandbox.exited.then((exit) => {
      this.exit = exit;
      this.endedAt = Date.now();
      this.takeover = undefined;
      if (!TERMINAL.has(this.currentState))
        this.currentState = failedReason(exit.reason) ? 'failed' : 'exited';
      this.journal.append({ type: 'exit', ...exit, at: this.endedAt });
      this.journal.end();
    });
  }

  get id(): string {
    return this.sandbox.id;
  }

  get state(): SandboxState {
    return this.currentState;
  }

  get live(): boolean {
    return this.endedAt === undefined;
  }

  /** When it ended (epoch ms), or undefined while it lives. */
  get endTime(): number | undefined {
    return this.endedAt;
  }

  /** Starts the sandbox once; failures are already events (`error`, `state: failed`, `exit`). */
  start(): Promise<void> {
    this.startPromise ??= this.sandbox.start().catch(() => undefined);
    return this.startPromise;
  }

  /** Destroys the sandbox (after its start settles) and waits for the exit event. */
  async destroy(): Promise<void> {
    // Destroying mid-start would race the container's creation; starts are short, so wait.
    await this.startPromise;
    await this.sandbox.destroy('destroyed');
    await this.ended;
  }

  private onEvent(event: SandboxEvent & { at: number }): void {
    if (event.type === 'exit') return;
    if (event.type === 'state') {
      this.currentState = event.state;
      if (event.state === 'running' && this.observer.running)
        this.observer.running((event.at - this.createdAt) / 1000);
    } else this.observeOther(event);
    this.journal.append(event);
  }

  private observeOther(event: SandboxEvent): void {
    switch (event.type) {
      case 'takeover.requested': {
        const { takeoverId, url, expiresAt, reason, connectionId, label } = event;
        this.takeover = {
          id: takeoverId,
          url,
          expiresAt,
          reason,
          ...(connectionId === undefined ? {} : { connectionId }),
          ...(label === undefined ? {} : { label }),
        };
        return;
      }
      case 'takeover.completed':
      case 'takeover.cancelled':
      case 'takeover.expired':
        if (this.takeover?.id === event.takeoverId) this.takeover = undefined;
        this.observer.takeoverEnded?.(event.type.slice('takeover.'.length));
        return;
      case 'connect': {
        // Latency only when runner/inject reports it; the count either way.
        const duration = (event as { durationMs?: unknown }).durationMs;
        this.observer.connect?.(event.mode, typeof duration === 'number' ? duration : undefined);
        return;
      }
      case 'error':
        this.observer.sandboxError?.(event.code);
        return;
      case 'network':
        if (event.kind === 'tcp') this.observer.network?.(event.decision);
        return;
    }
  }

  view(): SandboxView {
    return {
      id: this.id,
      state: this.currentState,
      image: this.sandbox.options.image,
      createdAt: new Date(this.createdAt).toISOString(),
      ...(this.endedAt === undefined ? {} : { endedAt: new Date(this.endedAt).toISOString() }),
      exitCode: this.exit?.exitCode ?? null,
      exitReason: this.exit?.reason ?? null,
      oomKilled: this.exit?.oomKilled ?? null,
      ...(this.exit?.message === undefined ? {} : { exitMessage: this.exit.message }),
      takeover: this.takeover ?? null,
      metadata: this.metadata,
      network: policyToJson(this.sandbox.networkPolicy),
    };
  }
}
