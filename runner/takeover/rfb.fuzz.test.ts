/**
 * Property: the viewer-side RFB parser, fed any byte stream cut at any points, returns messages or
 * throws RfbProtocolError, never another exception, and where the cut falls changes nothing: the
 * same bytes come out (or the same refusal happens) as when the stream arrives in one chunk.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { budget, FUZZ_TEST_TIMEOUT_MS } from '../testing/fuzz.ts';
import { RfbClientParser, RfbProtocolError } from './rfb.ts';

const MAX_CUT = 256;

/** One client message with a correct header and arbitrary contents (RFC 6143 §7.5 and noVNC's). */
const message: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 19, maxLength: 19 }).map((b) => Uint8Array.of(0, ...b)),
  fc.array(fc.oneof(fc.integer(), fc.constant(-316)), { maxLength: 8 }).map((encodings) => {
    const b = Buffer.alloc(4 + 4 * encodings.length);
    b[0] = 2;
    b.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => {
      b.writeInt32BE(e | 0, 4 + 4 * i);
    });
    return b;
  }),
  fc.uint8Array({ minLength: 9, maxLength: 9 }).map((b) => Uint8Array.of(3, ...b)),
  fc.uint8Array({ minLength: 7, maxLength: 7 }).map((b) => Uint8Array.of(4, ...b)),
  fc.uint8Array({ minLength: 5, maxLength: 5 }).map((b) => Uint8Array.of(5, ...b)),
  fc.tuple(fc.uint8Array({ maxLength: MAX_CUT + 8 }), fc.boolean()).map(([text, extended]) => {
    const b = Buffer.alloc(8 + text.length);
    b[0] = 6;
    b.writeInt32BE(extended ? -text.length : text.length, 4);
    b.set(text, 8);
    return b;
  }),
  fc.uint8Array({ minLength: 9, maxLength: 9 }).map((b) => Uint8Array.of(150, ...b)),
  fc.uint8Array({ maxLength: 70 }).map((payload) => {
    const b = Buffer.alloc(9 + payload.length);
    b[0] = 248;
    b[8] = payload.length;
    b.set(payload, 9);
    return b;
  }),
  fc.uint8Array({ minLength: 3, maxLength: 3 }).map((b) => Uint8Array.of(250, ...b)),
  fc.integer({ min: 0, max: 3 }).map((screens) => {
    const b = Buffer.alloc(8 + 16 * screens);
    b[0] = 251;
    b[6] = screens;
    return b;
  }),
  fc
    .tuple(fc.constantFrom(0, 0, 0, 1), fc.uint8Array({ minLength: 10, maxLength: 10 }))
    .map(([subtype, rest]) => Uint8Array.of(255, subtype, ...rest)),
);

const handshake = fc.oneof(
  fc
    .constantFrom('RFB 003.008\n', 'RFB 003.007\n', 'RFB 003.003\n', 'RFB 003.009\n', 'RFB 003.008\r')
    .map((v) => Buffer.from(v, 'latin1')),
  fc.uint8Array({ minLength: 12, maxLength: 12 }),
);

/** Mostly well-formed sessions, with arbitrary bytes spliced in here and there. */
const session: fc.Arbitrary<Buffer> = fc
  .tuple(
    handshake,
    fc.constantFrom(1, 1, 1, 2, 0),
    fc.constantFrom(0, 1),
    fc.array(
      fc.oneof({ weight: 6, arbitrary: message }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) }),
      {
        maxLength: 12,
      },
    ),
  )
  .map(([version, security, shared, body]) => {
    const v33 = Buffer.from(version).toString('latin1') === 'RFB 003.003\n';
    return Buffer.concat([version, Buffer.from(v33 ? [shared] : [security, shared]), ...body]);
  });

const anyBytes = fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b));

interface Run {
  out: Buffer;
  refused: boolean;
  dropped: number;
}

/** Feeds `bytes` (copied: the parser rewrites in place) in the chunks the cut points give. */
function run(bytes: Buffer, cuts: number[], controls: boolean): Run {
  const parser = new RfbClientParser({ maxCutTextBytes: MAX_CUT, maxEncodings: 64 });
  const copy = Buffer.from(bytes);
  const points = [...new Set(cuts.map((c) => c % (copy.length + 1)))].sort((a, b) => a - b);
  const bounds = [0, ...points, copy.length];
  const out: Buffer[] = [];
  try {
    for (let i = 0; i + 1 < bounds.length; i++) {
      // Copies of the returned slices: a later chunk must not be able to change what was forwarded.
      for (const piece of parser.feed(copy.subarray(bounds[i], bounds[i + 1]), controls))
        out.push(Buffer.from(piece));
    }
  } catch (error) {
    if (!(error instanceof RfbProtocolError)) throw error;
    return { out: Buffer.concat(out), refused: true, dropped: parser.dropped };
  }
  return { out: Buffer.concat(out), refused: false, dropped: parser.dropped };
}

const cuts = fc.array(fc.nat(), { maxLength: 20 });

describe('RFB client parser under fuzzing', () => {
  it(
    'parses or refuses any stream, whatever the cuts, as it does in one chunk',
    () => {
      fc.assert(
        fc.property(fc.oneof(session, anyBytes), cuts, fc.boolean(), (bytes, cutAt, controls) => {
          const whole = run(bytes, [], controls);
          const split = run(bytes, cutAt, controls);
          expect(split.refused).toBe(whole.refused);
          if (!whole.refused) {
            expect(split.out.equals(whole.out)).toBe(true);
            expect(split.dropped).toBe(whole.dropped);
          } else {
            // Whatever went out before the refusal is a prefix of what would have gone out.
            expect(split.out.length).toBeLessThanOrEqual(bytes.length);
          }
          expect(whole.out.length).toBeLessThanOrEqual(bytes.length);
        }),
        budget(4000, 4000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'forwards every byte of a well-formed session from the controlling viewer',
    () => {
      const wellFormed = fc.tuple(fc.array(message, { maxLength: 12 }), cuts).map(([body, cutAt]) => ({
        bytes: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), ...body]),
        cutAt,
      }));
      fc.assert(
        fc.property(wellFormed, ({ bytes, cutAt }) => {
          const result = run(bytes, cutAt, true);
          // Refused only for what the bridge forbids on purpose: an over-long paste or Fence, QEMU subtype ≠ 0.
          if (!result.refused) expect(result.out.length).toBe(bytes.length);
          expect(result.dropped).toBe(0);
        }),
        budget(2000, 2000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
