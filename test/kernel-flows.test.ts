/**
 * The fast path's audit under an event burst: when the kernel drops conntrack events (its socket
 * buffer full), the helper must still report, once each, the marked flows whose events it lost,
 * those that closed meanwhile included. Real conntrack, on the host's loopback, with the test's
 * own listeners and an nft table that marks only connections to them.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KernelFlow, KernelFlows } from '../runner/network/kernel-flows.ts';

const MARK = 0x67780ff1;
const TABLE = `grexal_kf_test_${process.pid}`;
const LONG_LIVED = 3;
const LONG_BYTES = 20_000;
const BURST = 400;

const nft = (script: string) => execFileSync('nft', ['-f', '-'], { input: script });

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

async function shortConnection(port: number): Promise<void> {
  const socket = await open(port);
  socket.end('x');
  await once(socket, 'close');
}

async function listener(): Promise<{ port: number; close: () => void }> {
  const server = createServer((socket) => {
    socket.resume();
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

describe('kernel flow audit', () => {
  // The first proves the helper listens; the burst goes to the second, so it can be counted.
  let probe: Awaited<ReturnType<typeof listener>>;
  let target: Awaited<ReturnType<typeof listener>>;

  beforeAll(async () => {
    probe = await listener();
    target = await listener();
    execFileSync('sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1']);
    nft(`table ip ${TABLE} {
      chain out {
        type filter hook output priority 0; policy accept;
        tcp dport { ${probe.port}, ${target.port} } ct mark set ${MARK};
      }
    }`);
  });

  afterAll(() => {
    probe.close();
    target.close();
    execFileSync('nft', ['delete', 'table', 'ip', TABLE]);
  });

  it('takes up the flows whose events were dropped, and says events were lost', async () => {
    const flows: KernelFlow[] = [];
    let losses = 0;
    const kernel = new KernelFlows(MARK, { receiveBufferBytes: 16 * 1024, onLoss: () => losses++ });
    try {
      kernel.watch('127.0.0.1', (flow) => flows.push(flow));
      // The helper is listening once it reports a first connection.
      await until('the first flow', () => {
        if (flows.length === 0) void shortConnection(probe.port);
        return flows.length > 0;
      });
      const port = target.port;
      const helperPid = Number(
        execFileSync('pgrep', ['-n', '-f', `import os, select.* ${MARK} `]).toString(),
      );
      process.kill(helperPid, 'SIGSTOP');
      let long: Socket[] = [];
      try {
        // A burst fills the stopped helper's buffer: most of its connections open and close
        // unseen, and the long-lived connections' NEW events are dropped too.
        for (let i = 0; i < BURST; i++) await shortConnection(port);
        long = await Promise.all(Array.from({ length: LONG_LIVED }, () => open(port)));
        for (const socket of long) socket.write(Buffer.alloc(LONG_BYTES));
      } finally {
        process.kill(helperPid, 'SIGCONT');
      }
      await until('the loss to be reported', () => losses > 0);
      for (const socket of long) socket.end();
      await Promise.all(long.map((socket) => once(socket, 'close')));
      const toTarget = () => flows.filter((f) => f.port === port);
      const longOnes = () => toTarget().filter((f) => f.bytesUp >= LONG_BYTES);
      await until('the long-lived flows', () => longOnes().length === LONG_LIVED);
      // Every connection of the burst is reported once, with its counters.
      await until('the burst', () => toTarget().length >= BURST + LONG_LIVED);
      expect(toTarget()).toHaveLength(BURST + LONG_LIVED);
      expect(toTarget().every((f) => f.address === '127.0.0.1' && f.bytesUp > 0 && !f.countersLost)).toBe(
        true,
      );
    } finally {
      kernel.close();
    }
  });
});
