/** The names of the process warnings Node emitted while `work` ran (a leak warning, say). */
export async function warningsDuring(work: () => Promise<void>): Promise<string[]> {
  const names: string[] = [];
  const onWarning = (warning: Error) => names.push(warning.name);
  process.on('warning', onWarning);
  try {
    await work();
    // Node emits a warning on a later turn of the loop than the call that caused it.
    await new Promise((resolve) => setImmediate(resolve));
    return names;
  } finally {
    process.off('warning', onWarning);
  }
}
