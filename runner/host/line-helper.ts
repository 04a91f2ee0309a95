/**
 * A long-lived python3 helper (stdlib only) for what Node cannot do itself (netlink sockets,
 * setns, mount(2)): one request per line, each prefixed by its number, one answer line per
 * request with the same number. Spawned on first use (or by `warm()`, python3 takes ~30 ms to
 * start), it holds the process's exit open only while a request waits for its answer, never while
 * idle. Once it has died, every waiting and later request answers `undefined`, so the caller
 * takes its slower path instead of failing.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { python3 } from './python.ts';

export class LineHelper {
  private helper?: ChildProcessWithoutNullStreams;
  private broken = false;
  private next = 0;
  private readonly waiting = new Map<number, (answer: string | undefined) => void>();

  /** `source`: the Python program, run with `python3 -I -S -c`. */
  constructor(private readonly source: string) {}

  warm(): void {
    this.start();
  }

  /** Whether the helper process is up (started, and not dead). */
  get running(): boolean {
    return this.helper !== undefined;
  }

  /** The answer to `fields` (sent space-separated after the number), without its number. */
  request(fields: ReadonlyArray<string | number>): Promise<string | undefined> {
    const helper = this.start();
    if (!helper) return Promise.resolve(undefined);
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.hold(helper, true);
      helper.stdin.write(`${[id, ...fields].join(' ')}\n`);
    });
  }

  /** Whether the helper keeps the event loop alive: while an answer is awaited, and only then. */
  private hold(helper: ChildProcessWithoutNullStreams, held: boolean): void {
    for (const handle of [helper, helper.stdin, helper.stdout, helper.stderr] as {
      ref(): void;
      unref(): void;
    }[])
      if (held) handle.ref();
      else handle.unref();
  }

  /** Stops the helper and answers what still waits; a later request starts a new one. */
  close(): void {
    this.helper?.kill();
    this.fail();
    this.broken = false;
  }

  private start(): ChildProcessWithoutNullStreams | undefined {
    if (this.broken) return undefined;
    if (this.helper) return this.helper;
    // Without a python3 the spawn fails like a missing file: the callers' slower paths then.
    const helper = spawn(python3() ?? 'python3', ['-I', '-S', '-c', this.source], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    helper.on('error', () => this.fail());
    helper.on('exit', () => this.fail());
    helper.stdin.on('error', () => {});
    helper.stderr.resume();
    createInterface({ input: helper.stdout }).on('line', (line) => {
      const space = line.indexOf(' ');
      const id = Number(space === -1 ? line : line.slice(0, space));
      const resolve = this.waiting.get(id);
      this.waiting.delete(id);
      if (this.waiting.size === 0) this.hold(helper, false);
      resolve?.(space === -1 ? '' : line.slice(space + 1));
    });
    this.hold(helper, false);
    this.helper = helper;
    return helper;
  }

  private fail(): void {
    this.broken = true;
    this.helper = undefined;
    for (const resolve of this.waiting.values()) resolve(undefined);
    this.waiting.clear();
  }
}
