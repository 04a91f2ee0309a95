// An esbuild plugin for the takeover page's bundle: noVNC as the page uses it, against the only
// server it ever talks to (the runner's bridge in front of Xtigervnc, security type None only).
//
// - core/util/browser.js probes H.264 decoding with a top-level `await` (VideoDecoder: configure,
//   decode a frame, flush) before any of noVNC's modules, and so the page's script, can run: that
//   starts the browser's media stack on the path to the first frame. Xtigervnc has no H.264
//   encoder, so the answer is never used; here it stays `false`, which also makes the encodings
//   noVNC sends the same in every browser (the bridge's first update ahead, runner/takeover,
//   relies on that).
// - core/rfb.js's _fixScrollbars, a Safari workaround (its comment says so), toggles the screen's
//   overflow and forces a layout of the page each time noVNC scales its view: up to four times on
//   the way to the first frame (the scaleViewport setter, ServerInit, the first update's desktop
//   size, the first resize observation), each one making the next size read lay the page out
//   again, while the new tab is still loading. It now runs in Safari only (noVNC's isSafari).
// - The H.264 decoder, RSA-AES (RA2) and the legacy ciphers (VNC password, ARD, MSLogonII) are
//   dead code behind security types the bridge refuses and an encoding noVNC no longer lists:
//   stubs that throw if ever reached take their place.
const NOVNC_CORE = /[\\/]@novnc[\\/]novnc[\\/]core[\\/]/;
const H264_PROBE = 'supportsWebCodecsH264Decode = await _checkWebCodecsH264DecodeSupport();';
const RFB_BROWSER_IMPORT = "import { dragThreshold, supportsWebCodecsH264Decode } from './util/browser.js';";
const FIX_SCROLLBARS = '    _fixScrollbars() {\n';

const STUBS = {
  './decoders/h264.js':
    "export default class H264Decoder { decodeRect() { throw new Error('H.264 is not supported here'); } }",
  './ra2.js':
    "export default class RSAAESAuthenticationState extends EventTarget { constructor() { super(); throw new Error('RA2 security is not supported here'); } }",
  './crypto/crypto.js':
    "const refuse = () => { throw new Error('legacy VNC security is not supported here'); };\nexport default { encrypt: refuse, decrypt: refuse, importKey: refuse, generateKey: refuse, exportKey: refuse, deriveBits: refuse, digest: refuse };",
};

export const novncTrim = {
  name: 'novnc-trim',
  setup(b) {
    const stubbed = new Set();
    b.onResolve({ filter: /^\.\/(decoders\/h264|ra2|crypto\/crypto)\.js$/ }, (args) => {
      if (!NOVNC_CORE.test(args.importer) || !/[\\/]core[\\/]rfb\.js$/.test(args.importer)) return undefined;
      stubbed.add(args.path);
      return { path: args.path, namespace: 'novnc-stub' };
    });
    b.onLoad({ filter: /.*/, namespace: 'novnc-stub' }, (args) => ({
      contents: STUBS[args.path],
      loader: 'js',
    }));
    b.onLoad({ filter: /[\\/]@novnc[\\/]novnc[\\/]core[\\/]util[\\/]browser\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const source = await readFile(args.path, 'utf8');
      // A noVNC that no longer probes this way must be looked at again, not bundled as is.
      if (!source.includes(H264_PROBE))
        throw new Error(`novnc-trim: ${args.path} no longer has the H.264 probe`);
      return { contents: source.replace(H264_PROBE, ''), loader: 'js' };
    });
    b.onLoad({ filter: /[\\/]@novnc[\\/]novnc[\\/]core[\\/]rfb\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(RFB_BROWSER_IMPORT) || source.split(FIX_SCROLLBARS).length !== 2)
        throw new Error(`novnc-trim: ${args.path} no longer has _fixScrollbars as expected`);
      return {
        contents: source
          .replace(RFB_BROWSER_IMPORT, RFB_BROWSER_IMPORT.replace(' } from', ', isSafari } from'))
          .replace(FIX_SCROLLBARS, `${FIX_SCROLLBARS}        if (!isSafari()) return;\n`),
        loader: 'js',
      };
    });
    b.onEnd((result) => {
      if (result.errors.length) return;
      const missing = Object.keys(STUBS).filter((p) => !stubbed.has(p));
      if (missing.length) throw new Error(`novnc-trim: rfb.js no longer imports ${missing.join(', ')}`);
    });
  },
};
