/**
 * nft scripts reach the kernel in batches: while one `nft -f` runs, the scripts that arrive wait,
 * then go together as the next transaction. A burst of claims or exits (twenty sandboxes' chains
 * at once) then costs a few spawns instead of twenty, and each spawn blocks the runner's event
 * loop for its fork (~7 ms for an 80 MB process here). A lone script goes at once, as before. A
 * batch the kernel refuses is retried script by script, so a bad script fails only its own caller.
 */
type Run = (script: string) => Promise<unknown>;

interface Waiting {
  script: string;
  resolve(): void;
  reject(error: unknown): void;
}

export function batched(run: Run): (script: string) => Promise<void> {
  let queue: Waiting[] = [];
  let running = false;

  const drain = async (): Promise<void> => {
    running = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      try {
        await run(batch.map((waiting) => waiting.script).join(''));
        for (const waiting of batch) waiting.resolve();
      } catch (error) {
        if (batch.length === 1) batch[0]?.reject(error);
        else for (const waiting of batch) await run(waiting.script).then(waiting.resolve, waiting.reject);
      }
    }
    running = false;
  };

  return (script) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ script: script.endsWith('\n') ? script : `${script}\n`, resolve, reject });
      if (!running) void drain();
    });
}
