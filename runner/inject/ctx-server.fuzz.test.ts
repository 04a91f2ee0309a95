/**
 * Property: the ctx socket, fed arbitrary bytes, lines, invalid JSON and wrong shapes in arbitrary
 * chunks, answers each line with `{ id, result }` or `{ id, error: { code } }` with a documented
 * ctx code (or closes the connection cleanly for an oversized line), and still answers a
 * well-formed request afterwards, on the same connection and on a new one.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, LineSplitter, MAX_LINE_BYTES, METHODS } from '../../sandbox-agent/protocol.ts';
import { budget, DOCUMENTED_CTX_CODES, FUZZ_TEST_TIMEOUT_MS, oneAtATime } from '../testing/fuzz.ts';
import { hostileValue } from '../testing/json-mutations.ts';
import { CtxServer } from './ctx-server.ts';

const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
let dir: string;
let server: CtxServer;
let internalErrors = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ctx-fuzz-'));
  server = await CtxServer.listen(
    join(dir, 'ctx.sock'),
    {
      // Fake handlers in the shape of the real ones: coded errors for what the agent got wrong.
      connect: async (params) => {
        const id = (params as { connectionId?: unknown } | null)?.connectionId;
        if (id === 'ok') return { mode: 'secret_input', fields: { api_key: 'value' } };
        throw Object.assign(new Error('Not declared.'), { code: 'not_declared' });
      },
      request_takeover: async () => {
        throw Object.assign(new Error('No takeovers here.'), { code: 'takeover_unavailable' });
      },
    },
    { owner, onInternalError: () => internalErrors++ },
  );
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  answers: unknown[];
  closed: boolean;
}

/**
 * Writes the chunks, then a probe request on a line of its own, and collects answers until the
 * probe's arrives or the server closes. Bounded: a server that neither answers nor closes fails.
 */
function exchange(chunks: (string | Uint8Array)[], probeId: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.socketPath);
    const splitter = new LineSplitter();
    const answers: unknown[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the probe and no close; got ${JSON.stringify(answers).slice(0, 500)}`));
    }, 10_000);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answers, closed });
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) {
        const answer = JSON.parse(line) as { id?: unknown };
        answers.push(answer);
        if (answer.id === probeId) done(false);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => done(true));
    for (const chunk of chunks) socket.write(chunk);
    socket.write(`\n${JSON.stringify({ id: probeId, method: 'connect', params: { connectionId: 'ok' } })}\n`);
  });
}

function checkAnswer(answer: unknown): void {
  expect(answer).toBeTypeOf('object');
  const a = answer as { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
  expect(
    a.id === null || typeof a.id === 'string' || Number.isInteger(a.id),
    `id of ${JSON.stringify(a)}`,
  ).toBe(true);
  if ('error' in a) {
    expect(DOCUMENTED_CTX_CODES, 'a code docs/ctx-protocol.md lists').toContain(a.error?.code);
    expect(typeof a.error?.message).toBe('string');
  } else {
    expect('result' in a, `neither result nor error: ${JSON.stringify(a)}`).toBe(true);
  }
}

/** Lines an agent could send: valid, near-valid (wrong id or method types, prototype names), or junk. */
const line: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 70 }), hostileValue),
        method: fc.oneof(
          fc.constantFrom(...METHODS, 'toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'),
          fc.string({ maxLength: 70 }),
          hostileValue,
        ),
        params: fc.oneof(hostileValue, fc.record({ connectionId: hostileValue })),
      },
      { requiredKeys: [] },
    )
    .map((r) => JSON.stringify(r)),
);

/** The lines joined, then cut at arbitrary points; some chunks as raw (possibly invalid UTF-8) bytes. */
const stream = fc
  .tuple(
    fc.array(line, { maxLength: 12 }),
    fc.array(fc.nat(), { maxLength: 6 }),
    fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 3 }),
  )
  .map(([lines, cuts, raw]) => {
    const text = lines.join('\n');
    const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
    const chunks: (string | Uint8Array)[] = [];
    let at = 0;
    for (const p of points) {
      chunks.push(text.slice(at, p));
      at = p;
    }
    chunks.push(text.slice(at));
    return [...chunks, ...raw];
  });

describe('ctx socket under fuzzing', () => {
  it('checks answers against the documented codes, which are the protocol codes', () => {
    expect([...DOCUMENTED_CTX_CODES].sort()).toEqual([...ERROR_CODES].sort());
  });

  it(
    'answers every line with a documented code and keeps serving',
    async () => {
      await fc.assert(
        // One at a time: a run the time limit abandoned must not reset the next one's count.
        fc.asyncProperty(
          stream,
          oneAtATime(async (chunks) => {
            const probeId = `probe-${randomUUID()}`;
            internalErrors = 0;
            const { answers, closed } = await exchange(chunks, probeId);
            expect(closed, 'the server closed a connection that sent no oversized line').toBe(false);
            for (const answer of answers) checkAnswer(answer);
            const probe = answers.find((a) => (a as { id?: unknown }).id === probeId) as { result?: unknown };
            expect(probe.result).toEqual({ mode: 'secret_input', fields: { api_key: 'value' } });
            // The fake handlers fail only with coded errors: an internal one means the server misrouted.
            expect(internalErrors).toBe(0);
          }),
        ),
        budget(1500, 4000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it('answers a method named after an Object.prototype member as unknown, not by calling it', async () => {
    // Found by the property above: `handlers[method]` reached Object.prototype, so `toString`
    // answered a result and `hasOwnProperty` an internal error.
    for (const method of ['toString', 'constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
      const { answers } = await exchange([`${JSON.stringify({ id: 1, method })}\n`], 'p');
      expect(answers[0], method).toEqual({
        id: 1,
        error: { code: 'unknown_method', message: expect.any(String) },
      });
    }
  });

  it('closes a connection that sends an oversized line, and serves the next one', async () => {
    const { closed } = await exchange(['x'.repeat(MAX_LINE_BYTES + 1)], 'p');
    expect(closed).toBe(true);
    const next = await exchange([], 'after');
    expect(next.closed).toBe(false);
  });
});
