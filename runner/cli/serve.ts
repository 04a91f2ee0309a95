import { parseArgs } from 'node:util';
import pino from 'pino';
import { type PoolSpec, parsePoolFlag, serve } from '../api/index.ts';
import { type Problem, ValidationError } from '../errors.ts';
import { dangerousOverrideFromEnv } from '../network/index.ts';
import { DEFAULT_TIMEOUT_MS, parseDurationMs, Runner } from '../sandbox/index.ts';
import { type Command, progress } from './command.ts';

const USAGE = `Usage: grexal serve [options]

Serves the orchestrator's HTTP API (docs/api.md): sandboxes over REST, their events as
Server-Sent Events, takeover pages and streams, /healthz, /metrics and /openapi.json.
SIGTERM or Ctrl-C refuses new sandboxes, destroys every sandbox and exits 0.

Options:
  --host HOST              address to listen on (default 127.0.0.1); anything but loopback
                           needs GREXAL_RUNNER_TOKEN
  --port N                 port (default 8787; 0 picks a free one)
  --max-sandboxes N        live sandboxes at once; more get 429 with Retry-After (default 50).
                           Pool entries count too, but give their place to live runs
  --max-run-time DURATION  the longest a sandbox may run, e.g. 30m, 2h; also the default when a
                           request gives no limits.timeoutMs (default 1h)
  --pool NAME=IMAGE[,desktop][,runtime=R][,size=N][,maxIdle=30m]
                           keep N sandboxes of IMAGE started (default 2, at most 64), so that
                           requests matching image, desktop, limits and runtime start warm;
                           repeatable (docs/pools.md)
  --public-url URL         the origin users reach this runner at, for takeover links
                           (default http://HOST:PORT)
  --dangerously-enable-dns-override
                           tests only: accept GREXAL_DANGEROUSLY_OVERRIDE_DNS (.test names
                           mapped to the test's own listeners); refused without this flag
  -h, --help               show this help

Environment:
  GREXAL_RUNNER_TOKEN      bearer token required on /v1/* (compared in constant time)
  GREXAL_LOG_LEVEL         log level of the JSON logs on stderr (default info)
  GREXAL_STATE_DIR         where per-sandbox directories live
  DOCKER_HOST              the engine (default /var/run/docker.sock)

Example:
  GREXAL_RUNNER_TOKEN=$(openssl rand -hex 32) grexal serve --port 8787
  curl -H "Authorization: Bearer $GREXAL_RUNNER_TOKEN" -H 'Content-Type: application/json' \\
    -d '{"image":"grexal/agent","command":["echo","hi"]}' http://127.0.0.1:8787/v1/sandboxes
`;

interface ServeFlags {
  port: number;
  pools: PoolSpec[];
  maxSandboxes?: number;
  maxRunTimeMs?: number;
}

/** Every bad flag at once, before anything starts. */
function parseFlags(values: {
  port?: string;
  'max-sandboxes'?: string;
  'max-run-time'?: string;
  pool?: string[];
}): ServeFlags {
  const problems: Problem[] = [];
  const integer = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (Number.isInteger(n) && n >= min && n <= max && text.trim() !== '') return n;
    problems.push({
      code: 'E_FIELD_INVALID',
      path: `--${flag}`,
      message: `'${text}' is not a whole number in ${min}..${max}.`,
      fix: `Give e.g. ${flag === 'port' ? '8787' : '50'}.`,
    });
    return undefined;
  };
  const port = integer('port', values.port, 0, 65_535) ?? 8787;
  const maxSandboxes = integer('max-sandboxes', values['max-sandboxes'], 1, 10_000);
  let maxRunTimeMs: number | undefined;
  const runTime = values['max-run-time'];
  if (runTime !== undefined) {
    maxRunTimeMs = parseDurationMs(runTime);
    if (maxRunTimeMs === undefined || maxRunTimeMs < 1_000) {
      problems.push({
        code: 'E_LIMIT_INVALID',
        path: '--max-run-time',
        message: `'${runTime}' is not a duration of at least 1s.`,
        fix: 'Give e.g. 30m or 2h.',
      });
    }
  }
  const pools: PoolSpec[] = [];
  for (const [index, text] of (values.pool ?? []).entries()) {
    try {
      pools.push(parsePoolFlag(text, parseDurationMs, index));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      problems.push(
        ...error.problems.map((p) =>
          p.path.startsWith('--') ? p : { ...p, path: `--pool[${index}].${p.path}` },
        ),
      );
    }
  }
  const names = pools.map((p) => p.name);
  for (const [index, name] of names.entries())
    if (names.indexOf(name) !== index)
      problems.push({
        code: 'E_POOL_FLAG_INVALID',
        path: `--pool[${index}]`,
        message: `Pool '${name}' is given twice.`,
        fix: 'Give each pool its own name.',
      });
  if (problems.length > 0) throw new ValidationError(problems, 'options');
  return { port, maxSandboxes, maxRunTimeMs, pools };
}

export const serveCommand: Command = {
  name: 'serve',
  summary: "serve the orchestrator's HTTP API",
  usage: USAGE,
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        'max-sandboxes': { type: 'string' },
        'max-run-time': { type: 'string' },
        'public-url': { type: 'string' },
        pool: { type: 'string', multiple: true },
        'dangerously-enable-dns-override': { type: 'boolean', default: false },
      },
    });
    const dangerouslyOverrideDns = dangerousOverrideFromEnv(
      process.env,
      values['dangerously-enable-dns-override'],
    );
    const flags = parseFlags(values);
    const token = process.env['GREXAL_RUNNER_TOKEN'] || undefined;
    const logger = pino({ level: process.env['GREXAL_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
    const runner = await Runner.start({ logger, signal: io.signal, dangerouslyOverrideDns });
    let server: Awaited<ReturnType<typeof serve>>;
    try {
      // Each pool checked against the engine (image, runtime) before the API answers.
      for (const spec of flags.pools) await runner.setPool(spec);
      server = await serve({
        runner,
        logger,
        token,
        host: values.host,
        port: flags.port,
        publicUrl: values['public-url'],
        ...(flags.maxSandboxes === undefined ? {} : { maxSandboxes: flags.maxSandboxes }),
        maxRunTimeMs: flags.maxRunTimeMs ?? DEFAULT_TIMEOUT_MS,
      });
    } catch (error) {
      await runner.close();
      throw error;
    }
    progress(io, `serving on ${server.url}${token ? '' : ' (no token: loopback only)'}`);
    for (const spec of flags.pools) progress(io, `pool ${spec.name}: ${spec.size} × ${spec.image}, filling`);
    if (!io.signal.aborted)
      await new Promise((resolve) => io.signal.addEventListener('abort', resolve, { once: true }));
    progress(io, 'shutting down: destroying every sandbox');
    await server.close();
    progress(io, 'stopped');
    return 0;
  },
};
