/** A promise and its settlers, for tests that decide when a gate opens or fails. */
export function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A gate that fails with nobody waiting on it yet is not an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
