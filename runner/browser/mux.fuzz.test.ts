/**
 * Property: whatever an agent sends (JSON or not, CDP-shaped or not, naming sessions that are its
 * own, another client's or nobody's), the mux never throws; the agent's connection either ends
 * with a protocol close code or every message gets exactly one answer; nothing ever reaches the
 * browser on a session the agent does not own; and another client carries on untouched.
 */
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { budget, FUZZ_TEST_TIMEOUT_MS } from '../testing/fuzz.ts';
import { FakeChromium } from './fake-chromium.ts';
import { CdpMux, CLOSE_MALFORMED, CLOSE_POLICY, type MuxSink } from './mux.ts';

interface Recorded extends MuxSink {
  messages: Array<Record<string, unknown>>;
  closed?: number;
}

function recorder(): Recorded {
  const sink: Recorded = {
    messages: [],
    send: (message) => sink.messages.push(JSON.parse(message)),
    close: (code) => {
      sink.closed = code;
    },
  };
  return sink;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

const sessionName = fc.constantFrom('OWN', 'OTHER', 'S1', 'S999', '', 'x'.repeat(300));
const wellFormed = fc
  .record(
    {
      id: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER + 2)),
      method: fc.oneof(
        fc.constantFrom(
          'Test.echo',
          'Target.attachToTarget',
          'Target.detachFromTarget',
          'Target.sendMessageToTarget',
        ),
        fc.string({ maxLength: 300 }),
      ),
      params: fc.oneof(
        fc.constant(undefined),
        fc.record(
          { sessionId: sessionName, targetId: fc.constantFrom('T1', 'T9'), flatten: fc.boolean() },
          { requiredKeys: [] },
        ),
        fc.anything(),
      ),
      sessionId: fc.oneof(fc.constant(undefined), sessionName, fc.anything()),
    },
    { requiredKeys: ['id', 'method'] },
  )
  .map((message) => JSON.stringify(message));
/** Valid requests that name sessions: the ones that must be routed, or refused, exactly. */
const sessionBound = fc
  .record({
    id: fc.nat(),
    method: fc.constantFrom('Test.echo', 'Target.detachFromTarget', 'Target.sendMessageToTarget'),
    params: fc.record({ sessionId: sessionName }),
    sessionId: fc.oneof(fc.constant(undefined), sessionName),
  })
  .map((message) => JSON.stringify(message));
const text = fc.oneof(
  { weight: 3, arbitrary: sessionBound },
  { weight: 4, arbitrary: wellFormed },
  { weight: 1, arbitrary: fc.string({ maxLength: 64 }) },
  {
    weight: 1,
    arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)),
  },
);

describe('CdpMux under fuzzing', () => {
  it(
    'answers or ends the fuzzed client only, and never lets it onto a session it does not own',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(text, { maxLength: 12 }), async (texts) => {
          const browser = new FakeChromium();
          const mux = new CdpMux(await browser.open(), pino({ level: 'silent' }));
          await mux.start();
          const otherSink = recorder();
          const other = mux.attach({ type: 'browser' }, otherSink);
          const fuzzedSink = recorder();
          const fuzzed = mux.attach({ type: 'browser' }, fuzzedSink);
          await tick();
          const own = fuzzed.implicitSession;
          const otherSession = other.implicitSession;
          for (const t of texts)
            fuzzed.receive(
              t.replaceAll('"OWN"', JSON.stringify(own)).replaceAll('"OTHER"', JSON.stringify(otherSession)),
            );
          for (let i = 0; i < 5; i++) await tick();
          if (fuzzedSink.closed === undefined) {
            expect(fuzzedSink.messages.filter((m) => 'id' in m)).toHaveLength(texts.length);
          } else {
            expect([CLOSE_MALFORMED, CLOSE_POLICY]).toContain(fuzzedSink.closed);
          }
          // Nothing of the fuzzed client's ran on the other's session.
          expect(browser.sent.filter((sent) => sent.sessionId === otherSession)).toEqual([]);
          const detached = browser.methods('Target.detachFromTarget').map((sent) => sent.params['sessionId']);
          expect(detached).not.toContain(otherSession);
          other.receive(JSON.stringify({ id: 7, method: 'Test.echo', params: {} }));
          await tick();
          expect(otherSink.closed).toBeUndefined();
          expect(otherSink.messages.find((m) => m['id'] === 7)?.['result']).toBeDefined();
          mux.close();
        }),
        budget(300, 5_000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
