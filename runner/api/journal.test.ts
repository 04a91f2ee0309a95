import { describe, expect, it } from 'vitest';
import { EventJournal } from './journal.ts';
import { frame, parseLastEventId } from './sse.ts';

describe('EventJournal', () => {
  it('numbers events from 1 and replays after an id', () => {
    const journal = new EventJournal();
    for (const text of ['a', 'b', 'c']) journal.append({ type: 'log', text });
    expect(journal.since(1).entries.map((e) => e.id)).toEqual([2, 3]);
    expect(journal.since().entries.map((e) => JSON.parse(e.data).text)).toEqual(['a', 'b', 'c']);
    expect(journal.since(1).lost).toBeUndefined();
  });

  it('stays bounded by count and bytes, and says what a late reader lost', () => {
    const byCount = new EventJournal({ maxEvents: 3 });
    for (let i = 0; i < 10; i++) byCount.append({ type: 'log', text: String(i) });
    expect(byCount.since(2)).toMatchObject({ lost: { from: 3, to: 7 } });
    expect(byCount.since(2).entries.map((e) => e.id)).toEqual([8, 9, 10]);
    const byBytes = new EventJournal({ maxBytes: 100 });
    for (let i = 0; i < 10; i++) byBytes.append({ type: 'log', text: 'x'.repeat(40) });
    expect(byBytes.since().entries.length).toBeLessThan(3);
    expect(byBytes.since().entries.at(-1)?.id).toBe(10);
  });

  it('follows without a gap between replay and live events, and ends readers', () => {
    const journal = new EventJournal();
    journal.append({ type: 'state', state: 'starting' });
    const seen: (number | 'end')[] = [];
    journal.follow(
      undefined,
      (replay) => seen.push(...replay.entries.map((e) => e.id)),
      (entry) => seen.push(entry === 'end' ? 'end' : entry.id),
    );
    journal.append({ type: 'exit' });
    journal.end();
    expect(seen).toEqual([1, 2, 'end']);
    expect(() => journal.append({ type: 'late' })).toThrow();
  });
});

describe('SSE framing', () => {
  it('frames id, event and one data line', () => {
    const text = frame({ id: 7, type: 'lo\ng', data: '{"id":7,"text":"a\\nb"}' });
    expect(text).toBe('id: 7\nevent: log\ndata: {"id":7,"text":"a\\nb"}\n\n');
  });

  it('accepts only plain numbers as Last-Event-ID', () => {
    expect(parseLastEventId('12')).toBe(12);
    expect([parseLastEventId('x'), parseLastEventId('-1'), parseLastEventId(undefined)]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});
