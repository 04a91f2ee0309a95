/**
 * bench/connect: `ctx.connect()` round trips through the real ctx server (CtxServer answering
 * from a prepared Injection, as a sandbox does), 20 agent processes × 1,000 sequential calls each,
 * all at once; p50 and p99 per call. The peer is the floor: a bare NDJSON server on a Unix socket
 * that parses each line and writes back a fixed answer. Rounds alternate, median ratio of p50s.
 *
 *   node scripts/run-ts.mjs bench/connect/main.ts [--clients 20] [--concurrency 1] [--calls 1000] [--pairs 3]
 *
 * `--clients` agent processes (each one ctx client, as in a sandbox), `--concurrency` call loops
 * inside each agent sharing its socket; every loop makes `--calls` calls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { CtxServer } from '../../runner/inject/ctx-server.ts';
import { prepareInjection } from '../../runner/inject/index.ts';
import { connectParamsSchema } from '../../sandbox-agent/protocol.ts';
import { alternate, median, percentile } from '../lib/stats.ts';
import { runClients } from './clients.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '1' },
    calls: { type: 'string', default: '1000' },
    pairs: { type: 'string', default: '3' },
  },
});
const clients = Number(values.clients);
const concurrency = Number(values.concurrency);
const calls = Number(values.calls);
const pairs = Number(values.pairs);

const API_KEY = 'sk-bench-0123456789abcdef';
const RESULT = { mode: 'secret_input', fields: { api_key: API_KEY } };

/** The runner's side as a sandbox has it: validated credentials behind the real socket server. */
async function startCtxServer(path: string): Promise<{ close(): Promise<void> }> {
  const injection = await prepareInjection({
    manifest: {
      connections: [
        {
          id: 'openai',
          mode: 'secret_input',
          fields: [{ key: 'api_key' }],
          env: { OPENAI_API_KEY: 'api_key' },
        },
      ],
    },
    credentials: { openai: { fields: { api_key: API_KEY } } },
  });
  const server = await CtxServer.listen(
    path,
    {
      connect: async (params, call) => {
        const { connectionId } = connectParamsSchema.parse(params);
        return injection.connect(connectionId, { signal: call.signal });
      },
    },
    { owner: { uid: process.getuid!(), gid: process.getgid!() } },
  );
  return {
    close: async () => {
      await server.close();
      injection.dispose();
    },
  };
}

/** The floor: parse the line, answer a fixed result with the request's id. */
async function startBareServer(path: string): Promise<{ close(): Promise<void> }> {
  const body = JSON.stringify(RESULT);
  const server: Server = createServer((socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line)
          socket.write(
            `{"id":${JSON.stringify((JSON.parse(line) as { id: unknown }).id)},"result":${body}}\n`,
          );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    close: async () => {
      server.close();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'bench-connect-'));
try {
  const clientBundle = join(dir, 'ctx.mjs');
  await build({
    entryPoints: ['sandbox-agent/clients/ctx.ts'],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node18',
    outfile: clientBundle,
    logLevel: 'warning',
  });
  const samples = { ctx: [] as number[], bare: [] as number[] };
  let round = 0;
  const measure = (kind: 'ctx' | 'bare') => async (): Promise<number> => {
    const path = join(dir, `${kind}-${round++}.sock`);
    const server = kind === 'ctx' ? await startCtxServer(path) : await startBareServer(path);
    try {
      const latencies = await runClients({
        dir,
        clientBundle,
        socketPath: path,
        clients,
        concurrency,
        calls,
        expect: RESULT,
      });
      samples[kind].push(...latencies);
      return percentile(latencies, 50);
    } finally {
      await server.close();
    }
  };
  console.log(
    `bench/connect: ${clients} agent process(es) × ${concurrency} concurrent loop(s) × ${calls} ctx.connect() calls; ${pairs} pairs alternated after a warm-up pair`,
  );
  const result = await alternate(pairs, measure('ctx'), measure('bare'), (i, a, b) =>
    console.log(
      `  pair ${i + 1}: ctx server p50 ${a.toFixed(3)} ms  bare NDJSON p50 ${b.toFixed(3)} ms  ratio ${(a / b).toFixed(3)}`,
    ),
  );
  // The warm-up pair's samples are dropped: the first `clients × calls` of each kind.
  const counted = (xs: number[]): number[] => xs.slice(clients * concurrency * calls);
  for (const [name, xs] of [
    ['ctx server ', counted(samples.ctx)],
    ['bare NDJSON', counted(samples.bare)],
  ] as const) {
    console.log(
      `${name}  p50 ${percentile(xs, 50).toFixed(3)} ms  p99 ${percentile(xs, 99).toFixed(3)} ms  max ${percentile(xs, 100).toFixed(3)} ms  (${xs.length} calls)`,
    );
  }
  console.log(
    `median p50 ratio ctx/bare ${result.ratio.toFixed(3)}; median of round p50s ${median(result.a).toFixed(3)} ms`,
  );
  console.log('targets: p50 ≤ 0.5 ms, p99 ≤ 3 ms');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
