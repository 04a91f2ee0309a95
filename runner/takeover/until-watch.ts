/**
 * Watches a takeover's `until` condition through the sandbox's desktop helper, which watches the
 * sandbox's browser over CDP (sandbox-agent/browser-watch.ts): the runner connects to
 * `<hostRunDir>/browser.sock`, sends `{"until":{…}}` on one line, and the helper answers
 * `{"met":"url"|"cookie"}` once the condition holds. Closing the connection stops the watch.
 *
 * The socket's directory belongs to the agent, so the same guards as the VNC socket apply (a
 * socket, not a link, the same inode after connecting). What the helper says is the sandbox's
 * word: an agent that fakes it only ends its own takeover early, and the event says `condition`.
 */
import { lstat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import type { Until } from '../../sandbox-agent/until.ts';

export type UntilMet = 'url' | 'cookie';

/** Resolves with what was met; rejects if the helper cannot be reached or closes; `signal` stops it. */
export type WatchUntil = (socketPath: string, until: Until, signal: AbortSignal) => Promise<UntilMet>;

const MAX_LINE = 1024;

export const watchUntil: WatchUntil = async (socketPath, until, signal) => {
  const before = await lstat(socketPath);
  if (!before.isSocket()) throw new Error('browser.sock is not a socket; refused');
  if (signal.aborted) throw new Error('stopped');
  return new Promise<UntilMet>((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    let text = '';
    const stop = (): void => {
      socket.destroy();
      reject(new Error('stopped'));
    };
    signal.addEventListener('abort', stop, { once: true });
    const done = (error: Error | undefined, met?: UntilMet): void => {
      signal.removeEventListener('abort', stop);
      socket.destroy();
      if (error) reject(error);
      else resolve(met!);
    };
    socket.setEncoding('utf8');
    socket.on('error', (error) => done(error));
    socket.on('close', () => done(new Error('the desktop helper closed the watch')));
    socket.on('connect', () => {
      void lstat(socketPath).then(
        (after) => {
          if (after.ino !== before.ino || after.dev !== before.dev) {
            done(new Error('browser.sock was replaced while connecting'));
            return;
          }
          socket.write(`${JSON.stringify({ until })}\n`);
        },
        (error: Error) => done(error),
      );
    });
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_LINE) return done(new Error('the desktop helper sent a line too long'));
      const end = text.indexOf('\n');
      if (end < 0) return;
      let message: unknown;
      try {
        message = JSON.parse(text.slice(0, end));
      } catch {
        return done(new Error('the desktop helper sent a line that is not JSON'));
      }
      const met = (message as { met?: unknown } | null)?.met;
      if (met === 'url' || met === 'cookie') done(undefined, met);
      else done(new Error('the desktop helper sent an unknown answer'));
    });
  });
};
