/**
 * The processes bench/bridge starts beside itself, so that no two parts share an event loop:
 *   rfb SOCKET            the bench's RFB server (runner/takeover/testing/rfb-server.ts), 1280×800
 *   bridge SOCKET         the runner's takeover server with one open takeover on SOCKET
 *   relay SOCKET          a bare TCP ↔ Unix socket relay (relay.ts), the reference ceiling
 * Each prints one JSON line on stdout when ready and runs until stdin closes.
 */
import { startTakeoverServer, TakeoverBroker } from '../../runner/takeover/index.ts';
import { startFakeRfbServer } from '../../runner/takeover/testing/rfb-server.ts';
import { startRelay } from './relay.ts';

const [role, socketPath] = process.argv.slice(2);
if (!socketPath || !['rfb', 'bridge', 'relay'].includes(role ?? '')) {
  process.stderr.write('usage: peer.ts rfb|bridge|relay SOCKET\n');
  process.exit(2);
}

const stop: Array<() => Promise<void>> = [];
if (role === 'rfb') {
  const server = await startFakeRfbServer(socketPath, { width: 1280, height: 800 });
  stop.push(() => server.close());
  process.stdout.write(`${JSON.stringify({ fullFrameBytes: server.fullFrameBytes })}\n`);
} else if (role === 'relay') {
  const { server, port } = await startRelay(socketPath);
  stop.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  process.stdout.write(`${JSON.stringify({ port })}\n`);
} else {
  const broker = new TakeoverBroker();
  const server = await startTakeoverServer({ broker, host: '127.0.0.1', port: 0 });
  const { takeover } = broker.request({
    sandboxId: 'bench',
    reason: 'bench',
    timeoutMs: 30 * 60_000,
    vncSocketPath: socketPath,
  });
  stop.push(async () => {
    broker.close();
    await server.close();
  });
  // The link carries the token; it goes to the parent only, over a pipe.
  process.stdout.write(
    `${JSON.stringify({ url: server.url, id: takeover.id, link: broker.linkFor(takeover.id) })}\n`,
  );
}

process.stdin.resume();
process.stdin.on('end', async () => {
  for (const s of stop) await s();
  process.exit(0);
});
