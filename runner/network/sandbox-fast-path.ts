/**
 * One sandbox's fast path: keeps its nft chain and sets in step with its policy (a change
 * empties the sets, so nothing allowed under the old policy stays open) and with its resolver's
 * answers, and turns the kernel's record of its forwarded flows into audit events. Changes go
 * through one queue per sandbox, and each reads the policy when it runs, so an answer judged
 * under an old policy can never land after the flush of a new one.
 */
import type { NetworkEvent } from './events.ts';
import {
  answerElements,
  cidrElements,
  elementTtl,
  type FastElement,
  type FastPathContext,
} from './fast-path.ts';
import type { KernelFlow } from './kernel-flows.ts';
import type { FastMode, NftTable } from './nft-table.ts';
import type { NetworkPolicy } from './policy.ts';
import { type JudgeContext, judge } from './proxy.ts';

export function fastMode(policy: NetworkPolicy): FastMode {
  return policy.mode === 'none' ? 'off' : policy.mode;
}

/** An element with less than this left is not counted on: the answer waits for its renewal. */
const MARGIN_MS = 5_000;
const MAX_REMEMBERED = 4_096;

const keyOf = (e: FastElement) => `${e.address} ${e.port ?? '*'}`;

export class SandboxFastPath {
  private queue: Promise<void> = Promise.resolve();
  /**
   * When each element this sandbox's sets hold expires (as far as the runner added it), so that
   * the answers of a client that resolves before every connection cost no nft call each: one
   * spawn is ~5-20 ms, as much as the connection itself.
   */
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly table: NftTable,
    private readonly ifname: string,
    private readonly judging: JudgeContext,
    private readonly context: FastPathContext,
    private readonly onEvent: (event: NetworkEvent) => void,
  ) {}

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => {});
    return run;
  }

  /** The sandbox joins the table with its chain filled for `policy`. */
  join(sandboxId: string): Promise<void> {
    return this.enqueue(() => {
      const policy = this.judging.policy();
      return this.table.add(this.ifname, sandboxId, fastMode(policy), cidrElements(policy));
    });
  }

  /**
   * After the policy changed: the chain rewritten and every set emptied, in one transaction.
   * Should that fail, the fast path is emptied on its own (everything to the proxy, which judges
   * by the new policy) before the error goes back: a narrowing never leaves the old sets open.
   */
  policyChanged(): Promise<void> {
    this.expiries.clear();
    return this.enqueue(async () => {
      this.expiries.clear();
      const policy = this.judging.policy();
      try {
        await this.table.setMode(this.ifname, fastMode(policy), cidrElements(policy));
      } catch (error) {
        await this.table.setMode(this.ifname, 'off', []).catch(() => {});
        throw error;
      }
    });
  }

  /**
   * The resolver's hook: what it answered for an allowed name enters the sets. Settles at once
   * when every element is there for a while yet (renewed behind the answer at half its life);
   * otherwise once they are added, so the first connection takes the fast path.
   */
  answered(name: string, addresses: string[], ttlSeconds: number, now = Date.now()): Promise<void> {
    const policy = this.judging.policy();
    const elements = addresses.flatMap((address) => answerElements(policy, name, address, this.context));
    const timeoutS = elementTtl(ttlSeconds);
    const left = elements.map((e) => (this.expiries.get(keyOf(e)) ?? 0) - now);
    if (left.every((ms) => ms > (timeoutS * 1000) / 2)) return Promise.resolve();
    const added = this.enqueue(async () => {
      // Judged again when it runs: a policy change queued before this must win.
      const current = this.judging.policy();
      const fresh = addresses.flatMap((address) => answerElements(current, name, address, this.context));
      await this.table.addAnswers(this.ifname, fresh, timeoutS);
      const until = Date.now() + timeoutS * 1000;
      for (const e of fresh) this.expiries.set(keyOf(e), until);
      if (this.expiries.size > MAX_REMEMBERED) this.expiries.clear();
    });
    return left.every((ms) => ms > MARGIN_MS) ? Promise.resolve() : added;
  }

  /** One audit event per forwarded connection, judged by the same rules the proxy uses. */
  flowEnded(flow: KernelFlow): void {
    const { verdict, host } = judge(this.judging, flow.address, flow.port);
    this.onEvent({
      type: 'network',
      kind: 'tcp',
      ...(host ? { host } : {}),
      port: flow.port,
      address: flow.address,
      // The kernel forwarded it, so it was allowed when it opened; a later narrowing shows in
      // `rule` (what would decide it now) but not in the decision.
      decision: 'allowed',
      rule: verdict.decision === 'allowed' ? verdict.rule : `fast-path (now ${verdict.rule})`,
      via: 'kernel',
      bytesUp: flow.bytesUp,
      bytesDown: flow.bytesDown,
      durationMs: flow.durationMs,
      ...(flow.countersLost ? { reason: 'byte counts unknown: the connection table no longer held it' } : {}),
    });
  }

  remove(): Promise<void> {
    return this.enqueue(() => this.table.remove(this.ifname));
  }
}
