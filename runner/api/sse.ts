/**
 * Server-Sent Events for one sandbox: replay from `Last-Event-ID`, then follow live, and end
 * after the `exit` event. A reader that falls too far behind is dropped; it reconnects with the
 * last id it saw and gets the rest from the replay buffer.
 */
import type { ServerResponse } from 'node:http';
import type { EventJournal, JournalEntry, Replay } from './journal.ts';

export interface SseOptions {
  /** Comment lines that keep idle connections open through proxies. Default 15000. */
  heartbeatMs?: number;
  /** Unsent bytes a slow reader may hold before it is dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
}

/** `Last-Event-ID` (or `?lastEventId=`) as a number; undefined when absent or not an id. */
export function parseLastEventId(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

export function frame(entry: JournalEntry): string {
  // Types come from code, but an SSE field must never carry a line break.
  return `id: ${entry.id}\nevent: ${entry.type.replace(/[\r\n]/g, '')}\ndata: ${entry.data}\n\n`;
}

function lostFrame(lost: NonNullable<Replay['lost']>): string {
  return `event: truncated\ndata: ${JSON.stringify({ type: 'truncated', ...lost })}\n\n`;
}

/** Streams the journal to `res` (already hijacked from the framework). Resolves when it ends. */
export function streamJournal(
  res: ServerResponse,
  journal: EventJournal,
  lastEventId: number | undefined,
  options: SseOptions = {},
): Promise<void> {
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    // Proxies such as nginx would otherwise hold events back.
    'X-Accel-Buffering': 'no',
  });
  // Tells EventSource clients how long to wait before reconnecting.
  res.write('retry: 1000\n\n');
  return new Promise((resolve) => {
    let unsubscribe = (): void => {};
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
    heartbeat.unref();
    const finish = (): void => {
      clearInterval(heartbeat);
      unsubscribe();
      resolve();
    };
    res.once('close', finish);
    const write = (text: string): void => {
      if (res.writableEnded || res.destroyed) return;
      res.write(text);
      if (res.writableLength > maxBuffered) res.destroy();
    };
    unsubscribe = journal.follow(
      lastEventId,
      (replay) => {
        if (replay.lost) write(lostFrame(replay.lost));
        for (const entry of replay.entries) write(frame(entry));
      },
      (entry) => {
        if (entry === 'end') {
          if (!res.writableEnded) res.end();
        } else write(frame(entry));
      },
    );
  });
}
