/**
 * bench/bridge: the takeover bridge (runner/takeover) against websockify (Debian's, with
 * --unix-target) and against reading the Unix socket directly (the limit), in the same run,
 * alternated, over one RFB server that answers every full-screen FramebufferUpdateRequest with a
 * 1280×800×32 bpp raw frame from memory, so that the path is the bottleneck.
 *
 * Reports full frames/s, MB/s, and the round trip of a 1×1 update request (p50, p99) per path,
 * and the median per-round ratios against the targets: throughput ≥ 2× websockify and ≥ 60 % of
 * direct; added round trip ≤ 0.15 ms p50 over direct.
 *
 *   node scripts/run-ts.mjs bench/bridge/main.ts [--rounds 7] [--frames 150] [--rtt 1000] [--client raw|ws] [--strict]
 *
 * The WebSocket client is ws-raw.ts by default (it counts bytes without reassembling messages, so
 * the path sets the pace); `--client ws` uses the ws library's client instead. A fourth path,
 * tcp-relay (relay.ts), relays TCP to the socket with nothing else: the ceiling of any relay here.
 *
 * Every process runs on loopback and is stopped at the end; every loop is bounded.
 * TODO(workload b): the same three paths over the real x11vnc of a desktop sandbox.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { median, percentile } from '../lib/stats.ts';
import { type RfbPath, rawWebSocketPath, streamPath, updateRequest, webSocketPath } from './client.ts';
import { cpuMs } from './cpu.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    frames: { type: 'string', default: '150' },
    rtt: { type: 'string', default: '1000' },
    strict: { type: 'boolean', default: false },
    client: { type: 'string', default: 'raw' },
  },
});
const ROUNDS = Number(values.rounds);
const FRAMES = Number(values.frames);
const RTT_SAMPLES = Number(values.rtt);
const WEBSOCKIFY = process.env['WEBSOCKIFY'] ?? '/usr/bin/websockify';
const WIDTH = 1280;
const HEIGHT = 800;

const children: ChildProcess[] = [];

function startPeer(
  role: 'rfb' | 'bridge' | 'relay',
  socket: string,
): Promise<Record<string, unknown> & { pid: number }> {
  const child = spawn(process.execPath, ['scripts/run-ts.mjs', 'bench/bridge/peer.ts', role, socket], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${role} peer exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout! }).once('line', (line) =>
      resolve({ ...JSON.parse(line), pid: child.pid! }),
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function startWebsockify(socket: string): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawn(WEBSOCKIFY, [`--unix-target=${socket}`, `127.0.0.1:${port}`], { stdio: 'ignore' });
  children.push(child);
  for (let attempt = 0; attempt < 200; attempt++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return { url: `ws://127.0.0.1:${port}/`, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`websockify did not listen on ${port}; is ${WEBSOCKIFY} installed?`);
}

interface Trial {
  framesPerSecond: number;
  megabytesPerSecond: number;
  rttP50Ms: number;
  rttP99Ms: number;
  /** CPU time of the relay process (bridge, websockify, tcp-relay) per full frame. */
  relayCpuMsPerFrame: number;
}

interface Measured {
  path: RfbPath;
  /** The relay process between client and server, if any. */
  relayPid?: number;
}

async function trial({ path, relayPid }: Measured, frameBytes: number): Promise<Trial> {
  const full = updateRequest(0, 0, WIDTH, HEIGHT);
  const tiny = updateRequest(0, 0, 1, 1);
  const cpuBefore = relayPid ? cpuMs(relayPid) : 0;
  const start = performance.now();
  for (let i = 0; i < FRAMES; i++) await path.request(full, frameBytes);
  const seconds = (performance.now() - start) / 1000;
  const relayCpuMsPerFrame = relayPid ? (cpuMs(relayPid) - cpuBefore) / FRAMES : Number.NaN;
  const rtts: number[] = [];
  for (let i = 0; i < RTT_SAMPLES; i++) {
    const t0 = performance.now();
    await path.request(tiny, 20);
    rtts.push(performance.now() - t0);
  }
  return {
    framesPerSecond: FRAMES / seconds,
    megabytesPerSecond: (FRAMES * frameBytes) / seconds / 1e6,
    rttP50Ms: percentile(rtts, 50),
    rttP99Ms: percentile(rtts, 99),
    relayCpuMsPerFrame,
  };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'grexal-bench-bridge-'));
  try {
    const socket = join(dir, 'vnc.sock');
    const { fullFrameBytes } = (await startPeer('rfb', socket)) as unknown as { fullFrameBytes: number };
    const bridge = (await startPeer('bridge', socket)) as {
      url: string;
      id: string;
      link: string;
      pid: number;
    };
    const token = new URL(bridge.link).searchParams.get('token')!;
    const streamUrl = `${bridge.url.replace('http', 'ws')}/v1/takeovers/${bridge.id}/stream?token=${token}`;
    const websockify = await startWebsockify(socket);
    const relay = (await startPeer('relay', socket)) as { port: number; pid: number };
    const viaWebSocket = values.client === 'ws' ? webSocketPath : rawWebSocketPath;
    const paths: Measured[] = [
      { path: await streamPath('direct', { path: socket }) },
      { path: await viaWebSocket('websockify', websockify.url), relayPid: websockify.pid },
      { path: await viaWebSocket('bridge', streamUrl), relayPid: bridge.pid },
      { path: await streamPath('tcp-relay', { port: relay.port, host: '127.0.0.1' }), relayPid: relay.pid },
    ];
    const results = new Map<string, Trial[]>(paths.map((p) => [p.path.name, []]));
    for (const path of paths) await trial(path, fullFrameBytes); // warm-up, not counted
    for (let round = 0; round < ROUNDS; round++) {
      const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
      for (const path of order) results.get(path.path.name)!.push(await trial(path, fullFrameBytes));
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    for (const { path } of paths) path.close();
    return report(results, fullFrameBytes);
  } finally {
    for (const child of children) {
      child.stdin?.end();
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: Map<string, Trial[]>, frameBytes: number): number {
  const of = (name: string): Trial[] => results.get(name)!;
  const med = (name: string, key: keyof Trial): number => median(of(name).map((t) => t[key]));
  const perRound = (f: (round: number) => number): number => median(of('bridge').map((_, i) => f(i)));
  const cpuRatio = perRound(
    (i) => of('bridge')[i]!.relayCpuMsPerFrame / of('websockify')[i]!.relayCpuMsPerFrame,
  );
  const lines = [
    `bench/bridge: ${WIDTH}×${HEIGHT}×32 bpp raw frames (${(frameBytes / 1e6).toFixed(2)} MB), ${FRAMES} frames and ${RTT_SAMPLES} 1×1 round trips per path per round, ${ROUNDS} rounds alternated; medians; ${values.client} WebSocket client; ${cpus().length} CPUs`,
    `${'path'.padEnd(11)}${'frames/s'.padStart(10)}${'MB/s'.padStart(10)}${'RTT p50'.padStart(11)}${'RTT p99'.padStart(11)}${'relay CPU/frame'.padStart(17)}`,
  ];
  for (const name of results.keys()) {
    const cpu = med(name, 'relayCpuMsPerFrame');
    lines.push(
      `${name.padEnd(11)}${med(name, 'framesPerSecond').toFixed(0).padStart(10)}${med(name, 'megabytesPerSecond').toFixed(0).padStart(10)}` +
        `${`${med(name, 'rttP50Ms').toFixed(3)} ms`.padStart(11)}${`${med(name, 'rttP99Ms').toFixed(3)} ms`.padStart(11)}` +
        `${(Number.isNaN(cpu) ? '-' : `${cpu.toFixed(2)} ms`).padStart(17)}`,
    );
  }
  const vsWebsockify = perRound(
    (i) => of('bridge')[i]!.framesPerSecond / of('websockify')[i]!.framesPerSecond,
  );
  const vsDirect = perRound((i) => of('bridge')[i]!.framesPerSecond / of('direct')[i]!.framesPerSecond);
  const addedRtt = perRound((i) => of('bridge')[i]!.rttP50Ms - of('direct')[i]!.rttP50Ms);
  const checks = [
    [`throughput bridge/websockify ${vsWebsockify.toFixed(2)}× (target ≥ 2)`, vsWebsockify >= 2],
    [`throughput bridge/direct ${(vsDirect * 100).toFixed(0)} % (target ≥ 60 %)`, vsDirect >= 0.6],
    [`added RTT p50 over direct ${addedRtt.toFixed(3)} ms (target ≤ 0.15 ms)`, addedRtt <= 0.15],
  ] as const;
  for (const [text, ok] of checks) lines.push(`${ok ? 'ok    ' : 'MISSED'} ${text}`);
  const vsRelay = perRound((i) => of('bridge')[i]!.framesPerSecond / of('tcp-relay')[i]!.framesPerSecond);
  lines.push(
    `info   relay CPU per frame bridge/websockify ${cpuRatio.toFixed(2)}× (machine-independent cost of the relay)`,
  );
  lines.push(
    `info   throughput bridge/tcp-relay ${(vsRelay * 100).toFixed(0)} % (tcp-relay: no WebSocket, no checks; the ceiling of a relay here)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return values.strict && checks.some(([, ok]) => !ok) ? 1 : 0;
}

process.exitCode = await main();
