/**
 * Starts a server or socket listening and settles once it does: resolves on the listen callback,
 * rejects with the first error before it (EADDRINUSE, EACCES). The one place that turns Node's
 * listen and bind callbacks into a promise, for every module that serves something.
 */
import type { EventEmitter } from 'node:events';

export function listening(target: EventEmitter, start: (onListening: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.once('error', reject);
    start(() => {
      target.off('error', reject);
      resolve();
    });
  });
}
