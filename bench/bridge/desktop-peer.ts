/**
 * Runs inside a grexal/desktop container for bench/bridge's second workload: the sandbox's own
 * desktop startup (sandbox-agent/desktop.ts), then waits for SIGTERM. Bundled for Node 18 by main.ts.
 */
import { startDesktop } from '../../sandbox-agent/desktop.ts';

const desktop = await startDesktop({ width: 1280, height: 800 });
process.stdout.write(`${JSON.stringify(desktop.env)}\n`);
process.once('SIGTERM', () => {
  void desktop.stop().then(() => process.exit(0));
});
