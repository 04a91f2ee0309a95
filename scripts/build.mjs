// Bundles the runner (Node 20) and what runs inside the sandbox (Debian bookworm's Node 18) with
// esbuild: one file each, so the CLI starts fast and images need nothing from the npm registry.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { novncTrim } from './novnc-trim.mjs';

// CommonJS dependencies (dockerode, pino) call require(); an ESM bundle needs one to exist.
const requireShim =
  "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);";

const common = { bundle: true, platform: 'node', format: 'esm', sourcemap: 'linked', logLevel: 'warning' };

const transportStubs = Object.fromEntries(
  ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'].map((m) => [
    m,
    './scripts/unused-transport.cjs',
  ]),
);

/**
 * zod's `z` namespace re-exports all of its ~60 message locales (`z.locales`), which no bundler can
 * drop behind the namespace: 370 KB, a fifth of `grexal run`'s bundle, read and evaluated on every
 * run. The runner speaks English only (`z.config` is never called), so `z.locales` holds `en` alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)
        ? { path: 'zod-locales-en', namespace: 'zod-english-only' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, () => ({
      contents: "export { default as en } from 'zod/v4/locales/en.js';",
      resolveDir: process.cwd(),
      loader: 'js',
    }));
  },
};

/**
 * `grexal run` evaluates its whole bundle before its first engine call, and some of it serves other
 * paths only: ws (takeover pages and the CDP relay: a desktop's), tar-fs (dockerode's image builds
 * and archives) and the Node built-ins nothing on a plain run calls (tls, https, zlib, worker
 * threads: pino's transports). In the run bundle each stands for a module of getters, one per
 * export, that requires the real module the first time one is read: same exports, same values,
 * evaluated when first used rather than at every start. A module whose exports are a function
 * (ws's are its WebSocket class) qualifies only where every importer takes named exports
 * (`import { WebSocketServer } from 'ws'`: the runner's TypeScript), never the function itself.
 */
const LAZY_IN_RUN = ['tar-fs', 'tls', 'https', 'zlib'];
const LAZY_IN_RUN_NAMED_ONLY = ['ws'];
const lazyInRun = {
  name: 'lazy-in-run',
  setup(b) {
    const projectRequire = createRequire(`${process.cwd()}/package.json`);
    const lazy = [...LAZY_IN_RUN, ...LAZY_IN_RUN_NAMED_ONLY];
    const names = lazy.flatMap((m) => [m, `node:${m}`]);
    const filter = new RegExp(`^(${names.map((n) => n.replace(/[/:]/g, '\\$&')).join('|')})$`);
    b.onResolve({ filter }, (args) => {
      if (args.namespace === 'lazy-in-run') return undefined; // the stand-in's own require
      const path = args.path.replace(/^node:/, '');
      if (LAZY_IN_RUN_NAMED_ONLY.includes(path) && !/\.tsx?$/.test(args.importer)) {
        throw new Error(`${path} is deferred for named imports only, and ${args.importer} imports it`);
      }
      return { path, namespace: 'lazy-in-run' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-in-run' }, (args) => {
      const real = projectRequire(args.path);
      const named = LAZY_IN_RUN_NAMED_ONLY.includes(args.path);
      if (real === null || (typeof real !== 'object' && !(named && typeof real === 'function'))) {
        throw new Error(`${args.path} cannot be deferred: its exports are not an object`);
      }
      // A built-in stays external; a package is bundled, reached through this module's require.
      const target = JSON.stringify(args.path);
      const getters = Object.keys(real)
        .map((key) => `Object.defineProperty(exports, ${JSON.stringify(key)}, { enumerable: true, get: () => load()[${JSON.stringify(key)}] });`)
        .join('\n');
      return {
        contents: `let real;\nconst load = () => (real ??= require(${target}));\n${getters}\n`,
        resolveDir: process.cwd(),
        loader: 'js',
      };
    });
  },
};

const targets = [
  // Host side, the library. dockerode loads ssh2 and gRPC at start even when unused; DOCKER_HOST=ssh://
  // and BuildKit are not supported, so stubs take their place and the CLI starts faster.
  {
    entryPoints: { index: 'runner/index.ts' },
    target: 'node20',
    alias: transportStubs,
    plugins: [zodEnglishOnly],
  },
  // The CLI's launcher (Node built-ins only): loads the CLI's bundle with a V8 code cache.
  { entryPoints: { grexal: 'runner/cli/launcher.ts' }, target: 'node20' },
  // Sandbox side: the desktop helper (the supervisor itself is Python, sandbox-agent/supervisor/) and
  // the JS ctx client.
  {
    entryPoints: { desktop: 'sandbox-agent/desktop-main.ts', ctx: 'sandbox-agent/clients/ctx.ts' },
    target: 'node18',
    // The image's own playwright-core (the Node 18 build), loaded by the helper only to read cookies
    // for a takeover's `until`.
    external: ['playwright-core'],
  },
];

// The takeover page (noVNC included) for the browser: dist/takeover/takeover.{js,css}, served by the runner.
const takeoverPage = {
  entryPoints: { takeover: 'runner/takeover/page/main.ts' },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
  outdir: 'dist/takeover',
  plugins: [novncTrim],
};

// Chunks of earlier builds (split bundles; names carry content hashes) are of no use now.
rmSync('dist/chunks', { recursive: true, force: true });

// The CLI itself: one CommonJS file, because Node 20 caches compiled code for scripts only
// (runner/cli/code-cache.ts); esbuild turns each command's import() into a lazy require, so
// `grexal run` still runs none of the HTTP server's modules.
const cli = {
  ...common,
  // Every command's; grexal run has its own (below).
  entryPoints: { 'grexal-cli': 'runner/cli/entry.ts' },
  format: 'cjs',
  target: 'node20',
  alias: transportStubs,
  plugins: [zodEnglishOnly],
  outdir: 'dist',
  outExtension: { '.js': '.cjs' },
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

await Promise.all([
  ...targets.map((t) =>
    build({ ...common, ...t, outdir: 'dist', outExtension: { '.js': '.mjs' }, banner: { js: requireShim } }),
  ),
  build(cli),
  // grexal run's own (run-entry.ts): that command's modules, what it does not call deferred.
  build({ ...cli, entryPoints: { 'grexal-run': 'runner/cli/run-entry.ts' }, plugins: [zodEnglishOnly, lazyInRun] }),
  build(takeoverPage),
]);
