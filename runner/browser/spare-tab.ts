/**
 * The spare tab: a blank tab the runner makes ahead of a takeover, hidden from the agent by the
 * relay (hidden-targets.ts), so that the clean room need not create one in the very moment the
 * user waits for the first frame (docs/browser.md, "Takeover latency"). Made in the background
 * (a tab in the default context, behind the agent's, at about:blank), handed to the clean room by
 * `take()` at the cut, made again as the takeover ends (`prepare()`, before agents are let back
 * in) or, failing that, once they are.
 *
 * What the relay promises about it: no agent message names it, so no agent session is attached
 * to it, no script of the agent's runs in it. The clean room still checks that it is as made (its
 * history one about:blank entry, no opener, the default context) and falls back to a new tab if not.
 */
import type { Logger } from 'pino';
import type { CdpMux, HiddenTarget } from './mux.ts';

export type SpareTab = HiddenTarget;

/** After this many failures in a row no spare is made any more (the clean room makes its tab). */
const MAX_FAILURES = 3;

export class SpareTabs {
  private spare?: SpareTab;
  private making?: Promise<void>;
  private enabled = false;
  private failures = 0;

  constructor(
    private readonly mux: CdpMux,
    private readonly logger: Logger,
  ) {}

  /** Keeps a spare from now on: one made now, in the background, and again after each take. */
  enable(): void {
    this.enabled = true;
    this.replenish();
  }

  /** Settles once no spare is being made (tests, benchmarks). */
  async ready(): Promise<boolean> {
    await this.making;
    return this.spare !== undefined;
  }

  /** The spare waiting, without taking it (tests, logs). */
  get current(): SpareTab | undefined {
    return this.spare;
  }

  /** Makes a spare if there is none (nor one on its way); settles once there is, or none could be. */
  async prepare(): Promise<void> {
    this.replenish();
    await this.making;
  }

  /** Makes a spare in the background if one is wanted and none is there or on its way. */
  replenish(): void {
    // One closed or crashed meanwhile is no spare.
    if (this.spare && !this.mux.targets.peek(this.spare.targetId)) this.spare = undefined;
    if (!this.enabled || this.spare || this.making || this.mux.closed || this.failures >= MAX_FAILURES)
      return;
    const started = Date.now();
    this.making = this.mux
      .createHiddenTarget({ url: 'about:blank', background: true })
      .then(
        (made) => {
          this.spare = made;
          this.failures = 0;
          this.logger.debug({ ms: Date.now() - started, tab: made.tabId !== undefined }, 'spare tab made');
          if (!made.tabId) this.logger.warn('spare tab made, but Chromium showed no tab target for it');
        },
        (error: unknown) => {
          // The browser going (the sandbox ending) is no failure of the spare's.
          if (this.mux.closed) return;
          this.failures++;
          this.logger.warn({ err: error, failures: this.failures }, 'could not make a spare tab');
        },
      )
      .finally(() => {
        this.making = undefined;
      });
  }

  /**
   * The spare, for the runner (visible to agents again from now on, as the user's tab is), or
   * undefined when there is none (gone, or none could be made). One still being made is waited
   * for: it was asked for before, so it comes sooner than a tab created now would (a takeover
   * asked again as soon as the last one ended). Call only while agents are cut off.
   */
  async take(): Promise<SpareTab | undefined> {
    await this.making;
    const spare = this.spare;
    this.spare = undefined;
    if (!spare) return undefined;
    this.mux.unhide(spare.targetId, spare.tabId);
    return this.mux.targets.peek(spare.targetId) ? spare : undefined;
  }
}
