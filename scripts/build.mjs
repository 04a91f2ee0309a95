// Bundles the runner and what runs inside the sandbox (both Node 20: the images take the host's) with
// esbuild: one file each, so the CLI starts fast and images need nothing from the npm registry.
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';
import { asciiComments } from './ascii-comments.mjs';
import { novncTrim } from './novnc-trim.mjs';
import { buildRunSnapshot, removeRunSnapshot } from './run-snapshot.mjs';

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
 * docker-modem formats every request it sends with `util.inspect(options, { showHidden: true,
 * depth: null })` for its debug log, also when that log is off (the `debug` call only drops the
 * string): a container's create config, an abort signal and its listeners, at every engine call.
 * Only formatted when `DEBUG=modem` turns the log on. Fails the build if the line is gone (a newer
 * docker-modem): then this can go, or must follow it.
 */
const modemQuietDebug = {
  name: 'modem-quiet-debug',
  setup(b) {
    b.onLoad({ filter: /[\\/]docker-modem[\\/]lib[\\/]modem\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const line = "debug('Sending: %s', util.inspect(options, {";
      if (!source.includes(line)) throw new Error(`modem-quiet-debug: "${line}" not found in ${args.path}`);
      return { contents: source.replace(line, `if (debug.enabled) ${line}`), loader: 'js' };
    });
  },
};

/**
 * What every bundle of the runner (the library, the CLI) takes. dockerode loads ssh2 and gRPC at
 * start even when unused; DOCKER_HOST=ssh:// and BuildKit are not supported, so stubs take their
 * place and the CLI starts faster.
 */
const runnerBundle = { alias: transportStubs, plugins: [zodEnglishOnly, modemQuietDebug] };

const targets = [
  // Host side, the library.
  { entryPoints: { index: 'runner/index.ts' }, target: 'node20', ...runnerBundle },
  // Sandbox side: the desktop helper (the supervisor itself is Python, sandbox-agent/supervisor/) and
  // the JS ctx client.
  {
    entryPoints: { desktop: 'sandbox-agent/desktop-main.ts', ctx: 'sandbox-agent/clients/ctx.ts' },
    target: 'node20',
    // The image's own playwright-core, loaded by the helper only to read cookies
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

// Chunks of earlier builds (split bundles; names carry content hashes) and the ES module launcher
// that dist/grexal.cjs replaced are of no use now.
rmSync('dist/chunks', { recursive: true, force: true });
for (const old of ['dist/grexal.mjs', 'dist/grexal.mjs.map']) rmSync(old, { force: true });
removeRunSnapshot();

// The CLI itself: one CommonJS file, because Node 20 caches compiled code for scripts only
// (runner/cli/code-cache.ts); esbuild turns each command's import() into a lazy require, so
// `grexal run` still runs none of the HTTP server's modules.
const cli = {
  ...common,
  // The launcher (Node built-ins only), which loads one of the two others with a V8 code cache:
  // grexal run's own (run-entry.ts), and every command's.
  entryPoints: {
    grexal: 'runner/cli/launcher.ts',
    'grexal-run': 'runner/cli/run-entry.ts',
    'grexal-cli': 'runner/cli/entry.ts',
  },
  format: 'cjs',
  target: 'node20',
  ...runnerBundle,
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
  build(takeoverPage),
]);
for (const bundle of ['dist/grexal.cjs', 'dist/grexal-run.cjs', 'dist/grexal-cli.cjs']) asciiComments(bundle);
// After the CLI: `grexal run`'s startup snapshot is made of the same modules.
await buildRunSnapshot(cli);
