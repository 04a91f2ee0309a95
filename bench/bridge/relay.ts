/**
 * The reference path's relay: TCP ↔ the Unix socket with nothing else, no WebSocket framing, no
 * parsing, no checks, reading into pooled buffers like the bridge. It shows what any user-space
 * relay can do on this machine (two more copies and a third process than the direct socket),
 * so the bridge's figures can be read against that ceiling as well as against websockify.
 */
import { connect, createServer, type Server } from 'node:net';

const BUFFER_BYTES = 256 * 1024;

export function startRelay(socketPath: string): Promise<{ server: Server; port: number }> {
  const server = createServer((client) => {
    client.setNoDelay(true);
    const free: Buffer[] = [];
    let current: Buffer = Buffer.allocUnsafeSlow(BUFFER_BYTES);
    const upstream = connect({
      path: socketPath,
      onread: {
        buffer: () => current,
        callback: (n, buf) => {
          const b = buf as Buffer;
          if (n < 32 * 1024) {
            client.write(Buffer.from(b.subarray(0, n)));
            return true;
          }
          current = free.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
          client.write(b.subarray(0, n), () => free.push(b));
          return true;
        },
      },
    });
    client.on('data', (d) => upstream.write(d));
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}
