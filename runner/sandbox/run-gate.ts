/**
 * When a sandbox's run is bound. A cold sandbox is bound from its creation; a pool entry starts
 * unbound, its supervisor's bootstrap waits on `bound`, and `bind()` opens it once, at the claim.
 * `asked` tells when the supervisor has asked for its bootstrap: a pool entry is ready then.
 */
import { GrexalError } from '../errors.ts';
import type { SandboxExit } from './events.ts';

/** How long a pool entry's supervisor may take to ask for its bootstrap before the entry counts as failed. */
const ENTRY_READY_TIMEOUT_MS = 30_000;

export class RunGate {
  readonly bound: Promise<void>;
  private open!: () => void;
  private isBound = false;
  readonly asked: Promise<void>;
  private markAsked!: () => void;

  constructor(boundNow: boolean) {
    this.bound = new Promise((resolve) => {
      this.open = resolve;
    });
    this.asked = new Promise((resolve) => {
      this.markAsked = resolve;
    });
    if (boundNow) this.bind();
  }

  get isOpen(): boolean {
    return this.isBound;
  }

  bind(): void {
    this.isBound = true;
    this.open();
  }

  askedForBootstrap(): void {
    this.markAsked();
  }

  /** Resolves once the supervisor asked; rejects if the sandbox ends first or it takes too long. */
  async waitUntilAsked(sandboxId: string, exited: Promise<SandboxExit>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new GrexalError(
              'E_SANDBOX_START_FAILED',
              `Pool entry ${sandboxId}: the supervisor did not ask for its bootstrap within ${ENTRY_READY_TIMEOUT_MS / 1000} s. Check that the image runs the Grexal supervisor (FROM grexal/agent).`,
            ),
          ),
        ENTRY_READY_TIMEOUT_MS,
      ).unref();
    });
    const ended = exited.then((exit) => {
      throw new GrexalError(
        'E_SANDBOX_START_FAILED',
        `Pool entry ${sandboxId} ended while starting (${exit.reason}, exit code ${exit.exitCode}).`,
      );
    });
    ended.catch(() => {});
    try {
      await Promise.race([this.asked, late, ended]);
    } finally {
      clearTimeout(timer);
    }
  }
}
