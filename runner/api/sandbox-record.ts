/**
 * What the API knows of one sandbox, from creation until it is forgotten: its journal of events,
 * its state, its open takeover, and how it ended. It outlives the Sandbox object, so that late
 * readers get the history and a second DELETE still answers 204.
 */
import type { Sandbox, SandboxEvent, SandboxExit, SandboxState } from '../sandbox/index.ts';
import { EventJournal, type JournalLimits } from './journal.ts';
import type { OpenTakeover, SandboxView } from './protocol.ts';

/** What the metrics want to hear about. */
export interface RecordObserver {
  running?(startSeconds: number): void;
  takeoverEnded?(outcome: string): void;
  connect?(mode: string, durationMs: number | undefined): void;
  sandboxError?(code: string): void;
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
        this.currentState = exit.reason === 'failed' ? 'failed' : 'exited';
      this.journal.append({ type: 'exit', exitCode: exit.exitCode, reason: exit.reason, at: this.endedAt });
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

  private observeOther(event: SandboxEvent & { at: number }): void {
    const e = event as Record<string, unknown>;
    const str = (key: string): string | undefined => (typeof e[key] === 'string' ? e[key] : undefined);
    if (event.type === 'takeover.requested') {
      this.takeover = {
        id: str('takeoverId') ?? '',
        url: str('url') ?? '',
        expiresAt: str('expiresAt') ?? '',
        ...optional('reason', str('reason')),
        ...optional('connectionId', str('connectionId')),
        ...optional('label', str('label')),
      };
    } else if (event.type.startsWith('takeover.')) {
      if (this.takeover?.id === str('takeoverId')) this.takeover = undefined;
      this.observer.takeoverEnded?.(event.type.slice('takeover.'.length));
    } else if (event.type === 'connect') {
      const duration = e['durationMs'];
      this.observer.connect?.(str('mode') ?? 'unknown', typeof duration === 'number' ? duration : undefined);
    } else if (event.type === 'error') {
      this.observer.sandboxError?.(str('code') ?? 'E_INTERNAL');
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
      takeover: this.takeover ?? null,
      metadata: this.metadata,
    };
  }
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
