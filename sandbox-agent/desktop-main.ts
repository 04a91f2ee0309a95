/**
 * The desktop helper (bundled to /opt/grexal/desktop.mjs, for the image's Node 20): the init of a desktop
 * sandbox's browser container, `node desktop.mjs <width> <height>` under tini (the runner sets
 * that entrypoint; runner/sandbox/browser-container.ts). It starts the desktop, prints ONE JSON
 * line on stdout, `{"env":{...}}` once everything answers or `{"error":"..."}` (then exits 1), and
 * on SIGTERM stops every desktop process and exits 0.
 */
import { type Desktop, startDesktop } from './desktop.ts';

function reply(message: { env: Record<string, string> } | { error: string }): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve()));
}

async function main(): Promise<number> {
  const [width, height] = process.argv.slice(2).map(Number);
  const aborted = new AbortController();
  let desktop: Desktop | undefined;
  let stopped: () => void = () => {};
  const stopping = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  process.on('SIGTERM', () => {
    aborted.abort();
    stopped();
  });
  try {
    desktop = await startDesktop({ width: width ?? 0, height: height ?? 0, signal: aborted.signal });
  } catch (error) {
    if (aborted.signal.aborted) return 0;
    await reply({ error: error instanceof Error ? error.message : String(error) });
    return 1;
  }
  await reply({ env: desktop.env });
  // Held open until the supervisor's SIGTERM, even if every desktop process were gone.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await stopping;
  clearInterval(keepAlive);
  await desktop.stop();
  return 0;
}

process.exit(await main());
