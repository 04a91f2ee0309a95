/** For sandbox.test.ts: a fake supervisor's line to the runner's ctx.sock, one request at a time. */
import { connect, type Socket } from 'node:net';
import { LineSplitter, type Method } from '../../sandbox-agent/protocol.ts';

export class CtxLink {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly socket: Socket) {
    const splitter = new LineSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) this.settle(line);
    });
    const fail = (): void => {
      for (const { reject } of this.pending.values()) reject(new Error('the runner closed ctx.sock'));
      this.pending.clear();
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }

  static open(path: string): Promise<CtxLink> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new CtxLink(socket));
      });
      socket.once('error', reject);
    });
  }

  private settle(line: string): void {
    const message = JSON.parse(line) as {
      id: number;
      result?: unknown;
      error?: { code: string; message: string };
    };
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${message.error.code}: ${message.error.message}`));
    else waiter.resolve(message.result);
  }

  call(method: Method, params: unknown = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  close(): void {
    this.socket.end();
  }
}
