/**
 * What the takeover page's noVNC sends right after ServerInit, byte for byte: SetPixelFormat,
 * SetEncodings and a full (non-incremental) FramebufferUpdateRequest. A takeover's spare VNC
 * connection sends exactly these once the screen may be shown (prepared-vnc.ts), so the server
 * has the first frame encoded, and the bridge sends it to a viewer that says it will ask for the
 * same (`first=` FIRST_REQUESTS_TAG) before it even asks (bridge.ts); the bridge then checks that
 * it did ask for the same, and disconnects it otherwise.
 *
 * This mirrors @novnc/novnc 1.7 (core/rfb.js `_negotiateServerInit`, `_sendEncodings`,
 * `RFB.messages`) as the page bundles it: no H.264 (scripts/novnc-trim.mjs), depth 24, the
 * default quality (6) and compression (2) levels. The ExtendedMouseButtons pseudo-encoding is
 * already rewritten to Raw, as the bridge rewrites the viewer's (rfb.ts). A real-browser test
 * (test/takeover-page.test.ts) fails if the page's noVNC ever sends anything else.
 */

export { FIRST_REQUESTS_TAG } from './page/page-data.ts';

/** noVNC's encodings, in its preference order (core/encodings.js), as the server receives them. */
const ENCODINGS: readonly number[] = [
  1, // CopyRect
  7, // Tight
  -260, // TightPNG
  16, // ZRLE
  21, // JPEG
  5, // Hextile
  2, // RRE
  6, // Zlib
  0, // Raw
  -32 + 6, // QualityLevel 6
  -256 + 2, // CompressLevel 2
  -223, // DesktopSize
  -224, // LastRect
  -258, // QEMUExtendedKeyEvent
  -261, // QEMULedEvent
  -308, // ExtendedDesktopSize
  -309, // Xvp
  -312, // Fence
  -313, // ContinuousUpdates
  -307, // DesktopName
  0xc0a1e5ce | 0, // ExtendedClipboard
  0, // ExtendedMouseButtons (-316), rewritten to Raw by the bridge
  0x574d5664, // VMwareCursor
  -239, // Cursor
];

/** The three messages for a screen of ServerInit's size (its first four bytes). */
export function firstRequests(serverInit: Buffer): Buffer {
  const width = serverInit.readUInt16BE(0);
  const height = serverInit.readUInt16BE(2);
  // SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 8 bits a channel, R G B at 0 8 16.
  const pixelFormat = Buffer.from([0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
  const encodings = Buffer.alloc(4 + 4 * ENCODINGS.length);
  encodings.writeUInt8(2, 0);
  encodings.writeUInt16BE(ENCODINGS.length, 2);
  for (const [i, e] of ENCODINGS.entries()) encodings.writeInt32BE(e, 4 + 4 * i);
  const update = Buffer.alloc(10);
  update.writeUInt8(3, 0);
  update.writeUInt16BE(width, 6);
  update.writeUInt16BE(height, 8);
  return Buffer.concat([pixelFormat, encodings, update]);
}
