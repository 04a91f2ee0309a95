import { describe, expect, it } from 'vitest';
import { firstRequests } from './first-requests.ts';
import { RfbClientParser, RfbProtocolError, SCREEN_BOUNDS } from './rfb.ts';

const handshake = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 0])]);

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}
function i32(n: number): number[] {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return [...b];
}

const messages = {
  setPixelFormat: Buffer.from([
    0,
    0,
    0,
    0,
    32,
    24,
    0,
    1,
    ...u16(255),
    ...u16(255),
    ...u16(255),
    16,
    8,
    0,
    0,
    0,
    0,
  ]),
  setEncodings: Buffer.from([2, 0, ...u16(3), ...i32(7), ...i32(-316), ...i32(-223)]),
  fbUpdateRequest: Buffer.from([3, 1, ...u16(0), ...u16(0), ...u16(1280), ...u16(800)]),
  keyEvent: Buffer.from([4, 1, 0, 0, ...i32(0x61)]),
  pointerEvent: Buffer.from([5, 1, ...u16(10), ...u16(20)]),
  clientCutText: Buffer.from([6, 0, 0, 0, ...i32(5), ...Buffer.from('hello')]),
  extendedCutText: Buffer.from([6, 0, 0, 0, ...i32(-4), 0x10, 0, 0, 1]),
  continuousUpdates: Buffer.from([150, 1, ...u16(0), ...u16(0), ...u16(1280), ...u16(800)]),
  fence: Buffer.from([248, 0, 0, 0, ...i32(0x80000000 | 0), 3, 1, 2, 3]),
  xvp: Buffer.from([250, 0, 1, 2]),
  setDesktopSize: Buffer.from([
    251,
    0,
    ...u16(1024),
    ...u16(768),
    1,
    0,
    ...i32(0),
    ...u16(0),
    ...u16(0),
    ...u16(1024),
    ...u16(768),
    ...i32(0),
  ]),
  qemuKey: Buffer.from([255, 0, ...u16(1), ...i32(0x61), ...i32(30)]),
};
const inputs = new Set([
  'keyEvent',
  'pointerEvent',
  'clientCutText',
  'extendedCutText',
  'xvp',
  'setDesktopSize',
  'qemuKey',
]);

function parserPastHandshake(): RfbClientParser {
  const parser = new RfbClientParser();
  parser.feed(Buffer.from(handshake), true);
  return parser;
}

function desktopSize(width: number, height: number): Buffer {
  return Buffer.from([
    251,
    0,
    ...u16(width),
    ...u16(height),
    1,
    0,
    ...i32(0),
    ...u16(0),
    ...u16(0),
    ...u16(width),
    ...u16(height),
    ...i32(0),
  ]);
}

describe('RfbClientParser', () => {
  it('clamps a controlling viewer’s SetDesktopSize into the screen bounds, and leaves one within them alone', () => {
    const sizeOf = (b: Buffer) => [
      b.readUInt16BE(2),
      b.readUInt16BE(4),
      b.readUInt16BE(16),
      b.readUInt16BE(18),
    ];
    const parser = parserPastHandshake();
    expect(sizeOf(Buffer.concat(parser.feed(desktopSize(390, 700), true)))).toEqual([390, 700, 390, 700]);
    const { maxWidth, maxHeight, minWidth, minHeight } = SCREEN_BOUNDS;
    expect(sizeOf(Buffer.concat(parser.feed(desktopSize(65535, 9000), true)))).toEqual([
      maxWidth,
      maxHeight,
      maxWidth,
      maxHeight,
    ]);
    expect(sizeOf(Buffer.concat(parser.feed(desktopSize(10, 0), true))).slice(0, 2)).toEqual([
      minWidth,
      minHeight,
    ]);
    // A view-only viewer's request never reaches the desktop.
    expect(parser.feed(desktopSize(800, 600), false)).toEqual([]);
  });

  it('with expectFirst, takes exactly those first messages (split anywhere, -316 rewritten) and forwards what follows', () => {
    const ahead = firstRequests(Buffer.from([...u16(1280), ...u16(800)]));
    // The viewer's own bytes: noVNC lists ExtendedMouseButtons, which the bridge rewrites to Raw.
    const sent = Buffer.from(ahead);
    const mouse = sent.indexOf(Buffer.from(i32(0)), 20 + 4 + 4 * 21);
    sent.writeInt32BE(-316, mouse);
    const stream = Buffer.concat([handshake, sent, messages.keyEvent, messages.fbUpdateRequest]);
    for (const cut of [1, 15, 20 + 7, 20 + 4 + 4 * 24 + 3, stream.length - 1]) {
      const parser = new RfbClientParser({ expectFirst: ahead });
      const out = [...parser.feed(stream.subarray(0, cut), true), ...parser.feed(stream.subarray(cut), true)];
      expect(Buffer.concat(out).subarray(handshake.length)).toEqual(
        Buffer.concat([messages.keyEvent, messages.fbUpdateRequest]),
      );
      expect(parser.aheadMatched).toBe(true);
    }
  });

  it('with expectFirst, refuses other first messages: other encodings, an input first, a partial update', () => {
    const ahead = firstRequests(Buffer.from([...u16(1280), ...u16(800)]));
    const pixelFormat = ahead.subarray(0, 20);
    const cases = [
      Buffer.concat([pixelFormat, messages.setEncodings]),
      Buffer.concat([messages.keyEvent]),
      Buffer.concat([ahead.subarray(0, ahead.length - 10), messages.fbUpdateRequest]),
      messages.setPixelFormat,
    ];
    for (const bytes of cases) {
      const parser = new RfbClientParser({ expectFirst: ahead });
      parser.feed(handshake, true);
      expect(() => parser.feed(bytes, true)).toThrow(RfbProtocolError);
      expect(parser.aheadMatched).toBe(false);
    }
  });

  it('passes the handshake and forces ClientInit to shared', () => {
    const parser = new RfbClientParser();
    const out = Buffer.concat(parser.feed(Buffer.from(handshake), false));
    expect(out.subarray(0, 13)).toEqual(handshake.subarray(0, 13));
    expect(out[13]).toBe(1);
  });

  it('with onHandshake, checks and reports the handshake and forwards none of it', () => {
    const steps: unknown[] = [];
    const parser = new RfbClientParser({ onHandshake: (step) => steps.push(step) });
    const out = parser.feed(Buffer.concat([handshake, messages.keyEvent]), true);
    expect(steps).toEqual([{ step: 'version', minor: 8 }, { step: 'security' }, { step: 'init' }]);
    expect(Buffer.concat(out)).toEqual(messages.keyEvent);
    expect(parser.dropped).toBe(0);
    const strict = new RfbClientParser({ onHandshake: () => {} });
    expect(() => strict.feed(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2])]), true)).toThrow(
      RfbProtocolError,
    );
  });

  it('accepts RFB 3.3, which has no security choice', () => {
    const parser = new RfbClientParser();
    const out = Buffer.concat(parser.feed(Buffer.from('RFB 003.003\n\x00'), true));
    expect(out.length).toBe(13);
    expect(parser.feed(Buffer.from(messages.keyEvent), true)).toHaveLength(1);
  });

  it('refuses any security type but None, and a bad version', () => {
    expect(() => new RfbClientParser().feed(Buffer.from('RFB 003.008\n\x02'), true)).toThrow(
      RfbProtocolError,
    );
    expect(() => new RfbClientParser().feed(Buffer.from('GET / HTTP/1.1\r\n'), true)).toThrow(
      RfbProtocolError,
    );
  });

  for (const [name, message] of Object.entries(messages)) {
    const isInput = inputs.has(name);
    it(`${name}: forwarded from the controller, ${isInput ? 'dropped' : 'forwarded'} for a viewer`, () => {
      const asController = Buffer.concat(parserPastHandshake().feed(Buffer.from(message), true));
      expect(asController.length).toBe(message.length);
      const asViewer = Buffer.concat(parserPastHandshake().feed(Buffer.from(message), false));
      expect(asViewer.length).toBe(isInput ? 0 : message.length);
    });

    it(`${name}: reassembled when split at every byte`, () => {
      const parser = parserPastHandshake();
      const parts: Buffer[] = [];
      for (const byte of message) parts.push(...parser.feed(Buffer.from([byte]), true));
      const out = Buffer.concat(parts);
      expect(out.length).toBe(message.length);
      if (name !== 'setEncodings') expect(out).toEqual(message);
    });
  }

  it('rewrites the ExtendedMouseButtons encoding so PointerEvent stays 6 bytes', () => {
    const out = Buffer.concat(parserPastHandshake().feed(Buffer.from(messages.setEncodings), true));
    expect(out.readInt32BE(4)).toBe(7);
    expect(out.readInt32BE(8)).toBe(0);
    expect(out.readInt32BE(12)).toBe(-223);
  });

  it('forwards slices of one chunk, dropping only the input of a viewer', () => {
    const all = Buffer.concat([
      messages.fbUpdateRequest,
      messages.keyEvent,
      messages.pointerEvent,
      messages.fbUpdateRequest,
    ]);
    const parser = parserPastHandshake();
    const out = parser.feed(Buffer.from(all), false);
    expect(out).toHaveLength(2);
    expect(Buffer.concat(out)).toEqual(Buffer.concat([messages.fbUpdateRequest, messages.fbUpdateRequest]));
    expect(parser.dropped).toBe(2);
  });

  it('holds a controller’s input in order (a split one too), forwards the rest and a resize, and hands the input over once', () => {
    const all = Buffer.concat([
      messages.keyEvent,
      messages.fbUpdateRequest,
      messages.pointerEvent,
      messages.setDesktopSize,
      messages.clientCutText,
    ]);
    const parser = parserPastHandshake();
    const cut = all.length - 3;
    const out = [
      ...parser.feed(Buffer.from(all.subarray(0, cut)), 'hold'),
      ...parser.feed(Buffer.from(all.subarray(cut)), 'hold'),
    ];
    expect(Buffer.concat(out)).toEqual(Buffer.concat([messages.fbUpdateRequest, messages.setDesktopSize]));
    expect(Buffer.concat(parser.takeHeld())).toEqual(
      Buffer.concat([messages.keyEvent, messages.pointerEvent, messages.clientCutText]),
    );
    expect(parser.takeHeld()).toEqual([]);
    expect(parser.dropped).toBe(0);
  });

  it('returns the chunk itself when everything is forwarded', () => {
    const chunk = Buffer.concat([messages.fbUpdateRequest, messages.keyEvent]);
    const out = parserPastHandshake().feed(chunk, true);
    expect(out).toEqual([chunk]);
    expect(out[0]).toBe(chunk);
  });

  it('handles a stream cut at random places', () => {
    const stream = Buffer.concat([handshake, ...Object.values(messages), ...Object.values(messages)]);
    for (let seed = 1; seed <= 50; seed++) {
      const parser = new RfbClientParser();
      const parts: Buffer[] = [];
      let at = 0;
      let rand = seed;
      while (at < stream.length) {
        rand = (rand * 1103515245 + 12345) % 2 ** 31;
        const size = 1 + (rand % 40);
        parts.push(...parser.feed(Buffer.from(stream.subarray(at, at + size)), true));
        at += size;
      }
      expect(Buffer.concat(parts).length).toBe(stream.length);
    }
  });

  it('refuses an oversized ClientCutText before buffering it, in either format', () => {
    const parser = new RfbClientParser({ maxCutTextBytes: 1024 });
    parser.feed(Buffer.from(handshake), true);
    expect(() => parser.feed(Buffer.from([6, 0, 0, 0, ...i32(1025)]), true)).toThrow(/1025 bytes/);
    const extended = new RfbClientParser({ maxCutTextBytes: 1024 });
    extended.feed(Buffer.from(handshake), true);
    expect(() => extended.feed(Buffer.from([6, 0, 0, 0, ...i32(-(2 ** 31))]), true)).toThrow(
      RfbProtocolError,
    );
  });

  it('accepts a ClientCutText at the limit split over many chunks', () => {
    const parser = new RfbClientParser({ maxCutTextBytes: 4096 });
    parser.feed(Buffer.from(handshake), true);
    const message = Buffer.concat([Buffer.from([6, 0, 0, 0, ...i32(4096)]), Buffer.alloc(4096, 0x41)]);
    const parts: Buffer[] = [];
    for (let at = 0; at < message.length; at += 1000)
      parts.push(...parser.feed(message.subarray(at, at + 1000), true));
    expect(Buffer.concat(parts)).toEqual(message);
  });

  it('refuses unknown types, QEMU subtypes, big fences and too many encodings', () => {
    const cases = [
      Buffer.from([7, 0, 0, 0]),
      Buffer.from([253, 0, 0, 0]),
      Buffer.from([255, 1, 0, 0]),
      Buffer.from([248, 0, 0, 0, 0, 0, 0, 0, 65]),
      Buffer.from([2, 0, ...u16(5000)]),
    ];
    for (const bad of cases) expect(() => parserPastHandshake().feed(bad, true)).toThrow(RfbProtocolError);
  });

  it('refuses a malformed header that arrives one byte at a time', () => {
    const parser = parserPastHandshake();
    parser.feed(Buffer.from([6]), true);
    parser.feed(Buffer.from([0, 0, 0]), true);
    expect(() => parser.feed(Buffer.from([0x7f, 0, 0, 0]), true)).toThrow(RfbProtocolError);
  });
});
