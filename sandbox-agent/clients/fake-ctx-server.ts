/** A tiny NDJSON server on a temporary Unix socket, standing in for the runner in client tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeRequest {
  id: unknown;
  method: string;
  params: unknown;
}

/** What to do with a request: answer it (after `delayMs`), never answer, or hang up. */
export type FakeAnswer =
  | { result: unknown; delayMs?: number }
  | { error: { code: string; message: string }; delayMs?: number }
  | 'never'
  | 'hang-up';

export class FakeCtxServer {
  readonly requests: FakeRequest[] = [];
  readonly sockets = new Set<Socket>();
  connections = 0;
  handler: (request: FakeRequest) => FakeAnswer = () => ({ result: {} });

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly server: Server,
  ) {}

  static async start(): Promise<FakeCtxServer> {
    const dir = await mkdtemp(join(tmpdir(), 'grexal-ctx-'));
    const path = join(dir, 'ctx.sock');
    const server = createServer();
    const fake = new FakeCtxServer(dir, path, server);
    server.on('connection', (socket) => fake.accept(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return fake;
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines.filter(Boolean)) this.answer(socket, JSON.parse(line) as FakeRequest);
    });
  }

  private answer(socket: Socket, request: FakeRequest): void {
    this.requests.push(request);
    const answer = this.handler(request);
    if (answer === 'never') return;
    if (answer === 'hang-up') {
      socket.destroy();
      return;
    }
    const { delayMs, ...body } = answer;
    const send = (): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify({ id: request.id, ...body })}\n`);
    };
    if (delayMs) setTimeout(send, delayMs);
    else send();
  }

  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await rm(this.dir, { recursive: true, force: true });
  }
}
