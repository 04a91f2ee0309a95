/**
 * bench/bridge: the takeover bridge (runner/takeover) against websockify (Debian's, with
 * --unix-target) and against reading the Unix socket directly (the limit), in the same run,
 * alternated. Two workloads:
 *   (a) default: the bench's own RFB server (runner/takeover/testing/rfb-server.ts) answering every
 *       full-screen FramebufferUpdateRequest with a 1280×800×32 bpp raw frame from memory, so the
 *       path is the bottleneck;
 *   (b) --desktop: the real VNC server of a grexal/desktop container started as a sandbox starts it
 *       (sandbox-agent/desktop.ts), or --vnc-socket PATH for a desktop already running.
 *
 * Reports full frames/s, MB/s, the round trip of a 1×1 update request (p50, p99) and the relay
 * process's CPU per frame, per path; then the median per-round ratios against the targets:
 * throughput ≥ 2× websockify and ≥ 60 % of direct; added round trip ≤ 0.15 ms p50 over direct.
 * A fourth path, tcp-relay (relay.ts), relays TCP to the socket with nothing else: the ceiling
 * of any relay on this machine.
 *
 *   node scripts/run-ts.mjs bench/bridge/main.ts [--desktop | --vnc-socket PATH] [--rounds 9]
 *     [--frames 150] [--rtt 1000] [--client raw|ws] [--strict]
 *
 * The WebSocket client is ws-raw.ts by default (it parses frames without reassembling messages,
 * so the path sets the pace); `--client ws` uses the ws library's client. Loopback only; every
 * loop is bounded; every process and container started here is stopped at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, percentile } from '../lib/stats.ts';
import { type RfbPath, rawWebSocketPath, streamPath, updateRequest, webSocketPath } from './client.ts';
import { cpuMs } from './cpu.ts';
import { startDesktopContainer, startPeer, startWebsockify, stopAll } from './peers.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    frames: { type: 'string', default: '150' },
    rtt: { type: 'string', default: '1000' },
    client: { type: 'string', default: 'raw' },
    desktop: { type: 'boolean', default: false },
    'desktop-image': { type: 'string', default: 'grexal/desktop' },
    'vnc-socket': { type: 'string' },
    strict: { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const FRAMES = Number(values.frames);
const RTT_SAMPLES = Number(values.rtt);

interface Trial {
  framesPerSecond: number;
  megabytesPerSecond: number;
  rttP50Ms: number;
  rttP99Ms: number;
  /** CPU time of the relay process (bridge, websockify, tcp-relay) per full frame. */
  relayCpuMsPerFrame: number;
}

interface Measured {
  name: string;
  /** Opens a fresh connection: one viewer at a time, as a VNC server paces every connected client together. */
  open: () => Promise<RfbPath>;
  /** The relay process between client and server, if any. */
  relayPid?: number;
}

async function trial({ open, relayPid }: Measured): Promise<Trial> {
  const path = await open();
  try {
    return await measure(path, relayPid);
  } finally {
    path.close();
  }
}

async function measure(path: RfbPath, relayPid: number | undefined): Promise<Trial> {
  // The server clips the request to its screen: this asks for all of it, whatever its size.
  const full = updateRequest(0, 0, 0xffff, 0xffff);
  const tiny = updateRequest(0, 0, 1, 1);
  const cpuBefore = relayPid ? cpuMs(relayPid) : 0;
  const bytesBefore = path.bytes();
  const start = performance.now();
  for (let i = 0; i < FRAMES; i++) await path.request(full);
  const seconds = (performance.now() - start) / 1000;
  const bytes = path.bytes() - bytesBefore;
  const relayCpuMsPerFrame = relayPid ? (cpuMs(relayPid) - cpuBefore) / FRAMES : Number.NaN;
  const rtts: number[] = [];
  for (let i = 0; i < RTT_SAMPLES; i++) {
    const t0 = performance.now();
    await path.request(tiny);
    rtts.push(performance.now() - t0);
  }
  return {
    framesPerSecond: FRAMES / seconds,
    megabytesPerSecond: bytes / seconds / 1e6,
    rttP50Ms: percentile(rtts, 50),
    rttP99Ms: percentile(rtts, 99),
    relayCpuMsPerFrame,
  };
}

async function vncSocket(dir: string): Promise<{ socket: string; workload: string }> {
  if (values['vnc-socket'])
    return { socket: values['vnc-socket'], workload: `(b) the VNC server at ${values['vnc-socket']}` };
  if (values.desktop) {
    const socket = await startDesktopContainer(dir, values['desktop-image']!);
    return { socket, workload: `(b) the VNC server of a ${values['desktop-image']} container, 1280×800` };
  }
  const socket = join(dir, 'vnc.sock');
  await startPeer('rfb', socket);
  return { socket, workload: '(a) the bench RFB server, 1280×800×32 bpp raw frames from memory' };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'grexal-bench-bridge-'));
  try {
    const { socket, workload } = await vncSocket(dir);
    const bridge = (await startPeer('bridge', socket)) as unknown as {
      url: string;
      id: string;
      link: string;
      pid: number;
    };
    const token = new URL(bridge.link).searchParams.get('token')!;
    const streamUrl = `${bridge.url.replace('http', 'ws')}/v1/takeovers/${bridge.id}/stream?token=${token}`;
    const websockify = await startWebsockify(socket);
    const relay = (await startPeer('relay', socket)) as unknown as { port: number; pid: number };
    const viaWebSocket = values.client === 'ws' ? webSocketPath : rawWebSocketPath;
    const paths: Measured[] = [
      { name: 'direct', open: () => streamPath('direct', { path: socket }) },
      {
        name: 'websockify',
        open: () => viaWebSocket('websockify', websockify.url),
        relayPid: websockify.pid,
      },
      { name: 'bridge', open: () => viaWebSocket('bridge', streamUrl), relayPid: bridge.pid },
      {
        name: 'tcp-relay',
        open: () => streamPath('tcp-relay', { port: relay.port, host: '127.0.0.1' }),
        relayPid: relay.pid,
      },
    ];
    const results = new Map<string, Trial[]>(paths.map((p) => [p.name, []]));
    for (const path of paths) await trial(path); // warm-up, not counted
    for (let round = 0; round < ROUNDS; round++) {
      const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
      for (const path of order) results.get(path.name)!.push(await trial(path));
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    return report(results, workload);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: Map<string, Trial[]>, workload: string): number {
  const of = (name: string): Trial[] => results.get(name)!;
  const med = (name: string, key: keyof Trial): number => median(of(name).map((t) => t[key]));
  const perRound = (f: (round: number) => number): number => median(of('bridge').map((_, i) => f(i)));
  const ms = (n: number): string => (Number.isNaN(n) ? '-' : `${n.toFixed(3)} ms`);
  const lines = [
    `bench/bridge, workload ${workload}`,
    `${FRAMES} full frames and ${RTT_SAMPLES} 1×1 round trips per path per round, ${ROUNDS} rounds alternated, medians; ${values.client} WebSocket client; ${cpus().length} CPUs`,
    `${'path'.padEnd(11)}${'frames/s'.padStart(10)}${'MB/s'.padStart(9)}${'RTT p50'.padStart(11)}${'RTT p99'.padStart(11)}${'relay CPU/frame'.padStart(17)}`,
  ];
  for (const name of results.keys()) {
    lines.push(
      name.padEnd(11) +
        med(name, 'framesPerSecond').toFixed(0).padStart(10) +
        med(name, 'megabytesPerSecond').toFixed(0).padStart(9) +
        ms(med(name, 'rttP50Ms')).padStart(11) +
        ms(med(name, 'rttP99Ms')).padStart(11) +
        ms(med(name, 'relayCpuMsPerFrame')).padStart(17),
    );
  }
  const ratio = (other: string) =>
    perRound((i) => of('bridge')[i]!.framesPerSecond / of(other)[i]!.framesPerSecond);
  const addedRtt = perRound((i) => of('bridge')[i]!.rttP50Ms - of('direct')[i]!.rttP50Ms);
  const cpuRatio = perRound(
    (i) => of('bridge')[i]!.relayCpuMsPerFrame / of('websockify')[i]!.relayCpuMsPerFrame,
  );
  const checks = [
    [
      `throughput bridge/websockify ${ratio('websockify').toFixed(2)}× (target ≥ 2)`,
      ratio('websockify') >= 2,
    ],
    [
      `throughput bridge/direct ${(ratio('direct') * 100).toFixed(0)} % (target ≥ 60 %)`,
      ratio('direct') >= 0.6,
    ],
    [`added RTT p50 over direct ${addedRtt.toFixed(3)} ms (target ≤ 0.15 ms)`, addedRtt <= 0.15],
  ] as const;
  for (const [text, ok] of checks) lines.push(`${ok ? 'ok    ' : 'MISSED'} ${text}`);
  lines.push(`info   relay CPU per frame bridge/websockify ${cpuRatio.toFixed(2)}×`);
  lines.push(
    `info   throughput bridge/tcp-relay ${(ratio('tcp-relay') * 100).toFixed(0)} % (tcp-relay: no WebSocket, no checks)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  return values.strict && checks.some(([, ok]) => !ok) ? 1 : 0;
}

// Interrupted (Ctrl-C, a timeout): stop what was started before going.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAll().finally(() => process.exit(130));
  });
}
process.exitCode = await main();
