/**
 * bench/takeover/trace: where a takeover round's time goes in the user's browser. Runs rounds as
 * bench/takeover does (one desktop sandbox, this runner), each with a Chromium performance trace
 * (CDP Tracing: devtools.timeline, v8, loading, blink.user_timing) from just before the new tab to
 * the first frame drawn, and prints, per round, the probe's stamps and the renderer main thread's
 * top-level tasks on the same clock (ms from the agent's request), with what each task was
 * (parse HTML, compile or run a script, a WebSocket event, a decode, a paint). The traces are
 * written to --out (open them in Chromium's DevTools, Performance panel) for a closer look.
 *
 *   node scripts/run-ts.mjs bench/takeover/trace.ts [--rounds 3] [--image grexal/desktop] [--out /tmp/ff-trace]
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { Server } from 'node:http';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import { Runner } from '../../runner/index.ts';
import { startTakeoverServer } from '../../runner/takeover/index.ts';
import { cpuBetween, cpuSnapshot } from '../lib/proc-cpu.ts';
import { askingAgent, linkParts, startTakeoverSandbox } from '../lib/takeover-sandbox.ts';
import { profileSelfTime, summariseTrace, type TraceEvent } from '../lib/trace-summary.ts';
import { addViewerProbeToContext, watchFirstDrawn } from '../lib/viewer-probe.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    image: { type: 'string', default: 'grexal/desktop' },
    out: { type: 'string', default: '/tmp/ff-trace' },
    // Only the runner's stamps and the probe's: no Chromium trace (which itself loads this process).
    'no-trace': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
mkdirSync(values.out, { recursive: true });

const AGENT = askingAgent(rounds);
const CATEGORIES = [
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'v8',
  'v8.execute',
  'disabled-by-default-v8.compile',
  'blink.user_timing',
  'loading',
  'toplevel',
  'netlog',
  'blink',
  ...(process.env.FF_PROFILE ? ['disabled-by-default-v8.cpu_profiler'] : []),
];

// The runner's side of the upgrade, in this process: when Node sees the request and when it writes
// the 101 (the ws library's answer), and the event loop's lag meanwhile (a 2-ms timer's lateness).
const upgrades: Array<{ seen: number; answered: number; url: string }> = [];
const nativeEmit = Server.prototype.emit;
Server.prototype.emit = function (this: Server, event: string, ...args: unknown[]) {
  if (event === 'upgrade') {
    const [req, socket] = args as [{ url?: string }, Duplex];
    const entry = { seen: Date.now(), answered: 0, url: req.url ?? '' };
    upgrades.push(entry);
    const write = socket.write.bind(socket) as (...a: unknown[]) => boolean;
    (socket as { write: unknown }).write = (...a: unknown[]) => {
      if (!entry.answered) entry.answered = Date.now();
      return write(...a);
    };
  }
  return (nativeEmit as (...a: unknown[]) => boolean).call(this, event, ...args);
} as typeof nativeEmit;
// The VNC side, in this process: writes to and data from Unix sockets (vnc.sock; cdp.sock too,
// told apart by size and first byte: the first requests start with SetPixelFormat, type 0, 20 bytes).
const pipeIo: Array<{ at: number; dir: 'out' | 'in'; bytes: number; first: number; socket: number }> = [];
const socketIds = new WeakMap<Socket, number>();
let sockets = 0;
const socketId = (socket: Socket): number => {
  const known = socketIds.get(socket);
  if (known !== undefined) return known;
  socketIds.set(socket, ++sockets);
  return sockets;
};
const isPipe = (socket: Socket) =>
  (socket as unknown as { _handle?: { constructor: { name: string } } })._handle?.constructor.name === 'Pipe';
const nativeWrite = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
  if (isPipe(this) && Buffer.isBuffer(chunk) && chunk[0] === 0 && chunk.length >= 20 && chunk.length < 200)
    pipeIo.push({
      at: Date.now(),
      dir: 'out',
      bytes: chunk.length,
      first: chunk[0]!,
      socket: socketId(this),
    });
  return (nativeWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof nativeWrite;
const nativeSocketEmit = Socket.prototype.emit;
Socket.prototype.emit = function (this: Socket, event: string | symbol, ...args: unknown[]) {
  if (event === 'data' && isPipe(this) && Buffer.isBuffer(args[0]) && socketIds.has(this))
    pipeIo.push({
      at: Date.now(),
      dir: 'in',
      bytes: args[0].length,
      first: args[0][0]!,
      socket: socketId(this),
    });
  return (nativeSocketEmit as (...a: unknown[]) => boolean).call(this, event, ...args);
} as typeof nativeSocketEmit;
const lags: Array<[number, number]> = [];
let tick = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - tick > 12) lags.push([tick, now - tick]);
  tick = now;
}, 2).unref();

const runner = await Runner.start({});
const server = await startTakeoverServer({ broker: runner.takeovers });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
const context = await browser.newContext({ viewport: { width: 1280, height: 913 } });
await addViewerProbeToContext(context);
try {
  const sb = await startTakeoverSandbox(runner, values.image, AGENT);
  const complete = async (n: number) => {
    const { id, token } = linkParts(await sb.link(n));
    runner.takeovers.complete(id, token);
  };
  for (let i = 0; i <= rounds; i++) {
    if (i > 0) await complete(i - 1);
    const link = await sb.link(i);
    const path = join(values.out, `round-${i}.json`);
    const traced = i > 0 && !values['no-trace'];
    if (traced) await browser.startTracing(undefined, { path, categories: CATEGORIES });
    const seen = Date.now();
    const cpuBefore = cpuSnapshot();
    const page = await context.newPage();
    const opened = Date.now();
    const drawn = watchFirstDrawn(page);
    await page.goto(link);
    const loaded = Date.now();
    const s = await drawn();
    const cpu = cpuBetween(cpuBefore, cpuSnapshot());
    const origin = await page.evaluate(() => performance.timeOrigin);
    await page.close();
    if (i === 0) continue;
    if (traced) await browser.stopTracing();
    const asked = sb.asked[i]!;
    const events = traced
      ? (JSON.parse(readFileSync(path, 'utf8')) as { traceEvents: TraceEvent[] }).traceEvents
      : [];
    console.log(`\nround ${i}: ${traced ? path : ''}`);
    const rel = (t: number) => (t - asked).toFixed(0).padStart(5);
    console.log(
      `  stamps (ms from request): seen ${rel(seen)} tab ${rel(opened)} load ${rel(loaded)} ws ${rel(s.wsCreated)} open ${rel(s.wsOpen)} firstSent ${rel(s.firstSent)} requested ${rel(s.requested)} firstRect ${rel(s.firstRect)} drawn ${rel(s.firstDrawn)}`,
    );
    console.log(
      `  CPU ms, link seen → drawn (${Date.now() - seen} ms): ${cpu
        .slice(0, 14)
        .map(([n, ms]) => `${n} ${ms}`)
        .join(', ')}`,
    );
    console.log(
      `  vnc.sock: ${pipeIo
        .filter((x) => x.at >= seen && x.at <= s.firstDrawn + 50)
        .slice(0, 12)
        .map((x) => `#${x.socket} ${x.dir} ${x.bytes}B @${rel(x.at).trim()}`)
        .join(', ')}`,
    );
    for (const u of upgrades.filter((x) => x.seen >= seen))
      console.log(
        `  runner: upgrade seen ${rel(u.seen)}, 101 written ${rel(u.answered)} (${u.url.slice(0, 40)})`,
      );
    console.log(
      `  runner event loop late >12 ms: ${lags
        .filter(([t]) => t >= seen - 5 && t <= s.firstDrawn)
        .map(([t, ms]) => `@${rel(t).trim()}+${ms}`)
        .join(' ')}`,
    );
    if (traced) for (const line of summariseTrace(events, link, origin, asked)) console.log(`  ${line}`);
    const nav = events.find(
      (e) =>
        e.name === 'navigationStart' &&
        String(e.args?.data?.['documentLoaderURL'] ?? '').includes(new URL(link).pathname),
    );
    if (nav) {
      const ts = (epoch: number) => nav.ts + (epoch - origin) * 1000;
      const top = (from: number, to: number) =>
        profileSelfTime(events, nav.pid, ts(from), ts(to))
          .slice(0, 12)
          .map(([f, ms]) => `${f} ${ms.toFixed(1)}`)
          .join('; ');
      console.log(`  script self time, tab → ws open: ${top(opened, s.wsOpen)}`);
      console.log(`  script self time, ws open → requested: ${top(s.wsOpen, s.requested)}`);
      console.log(`  script self time, requested → drawn: ${top(s.requested, s.firstDrawn)}`);
    }
  }
  await complete(rounds);
  await sb.exited;
} finally {
  await browser.close();
  await server.close();
  await runner.close();
}
