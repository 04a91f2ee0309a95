import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { nulFramedConnection } from './cdp-connection.ts';

function pair() {
  const fromBrowser = new PassThrough();
  const toBrowser = new PassThrough();
  const connection = nulFramedConnection(
    { readable: fromBrowser, writable: toBrowser },
    { maxMessageBytes: 16 },
  );
  const received: string[] = [];
  connection.onMessage((message) => received.push(message));
  return { fromBrowser, toBrowser, connection, received };
}

describe('nulFramedConnection', () => {
  it('splits messages at NUL bytes, across and within chunks', async () => {
    const { fromBrowser, received } = pair();
    fromBrowser.write('{"id":1}\0{"id"');
    fromBrowser.write(':2}\0');
    await new Promise((resolve) => setImmediate(resolve));
    expect(received).toEqual(['{"id":1}', '{"id":2}']);
  });

  it('ends each sent message with a NUL byte', () => {
    const { toBrowser, connection } = pair();
    connection.send('{"id":7}');
    expect(toBrowser.read().toString()).toBe('{"id":7}\0');
  });

  it('closes, with the reason, on a message over the limit, and drops what follows', async () => {
    const { fromBrowser, connection, received } = pair();
    const closed = new Promise<Error | undefined>((resolve) => connection.onClose(resolve));
    fromBrowser.write('x'.repeat(17));
    expect((await closed)?.message).toMatch(/exceeded 16 bytes/);
    expect(connection.closed).toBe(true);
    connection.send('{"id":1}');
    expect(received).toEqual([]);
  });

  it('reports the browser side ending once', async () => {
    const { fromBrowser, connection } = pair();
    let calls = 0;
    connection.onClose(() => calls++);
    fromBrowser.end();
    await new Promise((resolve) => setImmediate(resolve));
    connection.close();
    expect(calls).toBe(1);
  });
});
