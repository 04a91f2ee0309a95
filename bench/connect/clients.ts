/**
 * The agents of bench/connect: each a Node process with the bundled ctx client (as
 * /opt/grexal/ctx.mjs is in a sandbox) making sequential `ctx.connect()` calls. All start calling
 * together, after their warm-up, so the server sees every client at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Source of one agent: warm up, say ready, wait for go, then `concurrency` loops of `calls`
 * timed calls each over the client's one shared socket; print the latencies.
 */
function agentSource(bundle: string, calls: number, concurrency: number, expected: string): string {
  return `import { ctx } from ${JSON.stringify(bundle)};
import { createInterface } from 'node:readline';
const expected = ${expected};
// Cheap enough to run on every call without slowing the others sharing the CPU.
const check = (r) => { if (r.mode !== expected.mode || r.fields.api_key !== expected.fields.api_key) throw new Error('unexpected answer'); };
for (let i = 0; i < 50; i++) check(await ctx.connect('openai'));
console.log('ready');
const lines = createInterface({ input: process.stdin });
await new Promise((resolve) => lines.once('line', resolve));
lines.close();
async function loop() {
  const latencies = new Array(${calls});
  for (let i = 0; i < ${calls}; i++) {
    const t0 = performance.now();
    const r = await ctx.connect('openai');
    latencies[i] = performance.now() - t0;
    check(r);
  }
  return latencies;
}
const all = await Promise.all(Array.from({ length: ${concurrency} }, loop));
console.log(JSON.stringify(all.flat()));
`;
}

export interface RunClientsOptions {
  dir: string;
  clientBundle: string;
  socketPath: string;
  /** Agent processes. */
  clients: number;
  /** Concurrent call loops inside each agent, sharing its one socket. */
  concurrency: number;
  calls: number;
  expect: unknown;
}

function lineReader(child: ChildProcess): () => Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  lines.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  });
  return () => {
    const line = queue.shift();
    return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiters.push(resolve));
  };
}

/** Every call's latency in ms, all clients together. */
export async function runClients(options: RunClientsOptions): Promise<number[]> {
  const script = join(options.dir, 'agent.mjs');
  writeFileSync(
    script,
    agentSource(options.clientBundle, options.calls, options.concurrency, JSON.stringify(options.expect)),
  );
  const children = Array.from({ length: options.clients }, () =>
    spawn(process.execPath, [script], {
      env: { ...process.env, GREXAL_CTX_SOCKET: options.socketPath },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  try {
    const readers = children.map(lineReader);
    const exits = children.map(
      (child) =>
        new Promise<void>((resolve, reject) =>
          child.on('exit', (code) =>
            code === 0 ? resolve() : reject(new Error(`bench agent exited ${code}`)),
          ),
        ),
    );
    for (const next of readers)
      if ((await next()) !== 'ready') throw new Error('bench agent did not get ready');
    for (const child of children) child.stdin!.end('go\n');
    const results = await Promise.all(readers.map(async (next) => JSON.parse(await next()) as number[]));
    await Promise.all(exits);
    return results.flat();
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}
