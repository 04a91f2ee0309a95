/**
 * A sandbox's events as the API serves them: numbered from 1, serialised once, kept in a bounded
 * replay buffer so that a client reconnecting with `Last-Event-ID` gets what it missed.
 */

export interface JournalEntry {
  id: number;
  type: string;
  /** The event as JSON, `id` included: the SSE `data:` line. */
  data: string;
}

export interface JournalLimits {
  /** Events kept for replay. Default 1000. */
  maxEvents?: number;
  /** Bytes of JSON kept for replay. Default 1 MiB. */
  maxBytes?: number;
}

export interface Replay {
  /** Ids the buffer no longer holds, when the reader asked for them. */
  lost?: { from: number; to: number };
  entries: JournalEntry[];
}

type Reader = (entry: JournalEntry | 'end') => void;

export class EventJournal {
  private readonly entries: JournalEntry[] = [];
  private bytes = 0;
  private nextId = 1;
  private readonly readers = new Set<Reader>();
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  /** Set once the last event (`exit`) is in: readers end after replaying. */
  ended = false;

  constructor(limits: JournalLimits = {}) {
    this.maxEvents = limits.maxEvents ?? 1000;
    this.maxBytes = limits.maxBytes ?? 1024 * 1024;
  }

  append<E extends { readonly type: string }>(event: E): JournalEntry {
    if (this.ended) throw new Error('append after the journal ended');
    const id = this.nextId++;
    const entry = { id, type: event.type, data: JSON.stringify({ id, ...event }) };
    this.entries.push(entry);
    this.bytes += entry.data.length;
    // The newest event always stays, however large.
    while (this.entries.length > 1 && (this.entries.length > this.maxEvents || this.bytes > this.maxBytes)) {
      this.bytes -= this.entries.shift()!.data.length;
    }
    for (const reader of this.readers) reader(entry);
    return entry;
  }

  /** The last event is in; every reader ends. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const reader of this.readers) reader('end');
    this.readers.clear();
  }

  /** Events after `lastId` (all when undefined) that the buffer still holds. */
  since(lastId = 0): Replay {
    const first = this.entries[0]?.id ?? this.nextId;
    const entries = this.entries.filter((entry) => entry.id > lastId);
    return first > lastId + 1 ? { lost: { from: lastId + 1, to: first - 1 }, entries } : { entries };
  }

  /**
   * Replays from `lastId`, then follows. The replay and the subscription happen in one
   * synchronous step, so no event falls between them. Returns the unsubscribe function.
   */
  follow(lastId: number | undefined, onReplay: (replay: Replay) => void, reader: Reader): () => void {
    onReplay(this.since(lastId));
    if (this.ended) {
      reader('end');
      return () => {};
    }
    this.readers.add(reader);
    return () => this.readers.delete(reader);
  }

  get lastId(): number {
    return this.nextId - 1;
  }
}
