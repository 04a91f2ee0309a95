/**
 * One sandbox's fast path: keeps its nft chain and sets in step with its policy (a change
 * empties the sets, so nothing allowed under the old policy stays open) and with its resolver's
 * answers, and turns the kernel's record of its forwarded flows into audit events. Changes go
 * through one queue per sandbox, and each reads the policy when it runs, so an answer judged
 * under an old policy can never land after the flush of a new one.
 */
import type { NetworkEvent } from './events.ts';
import { answerElements, cidrElements, elementTtl, type FastPathContext } from './fast-path.ts';
import type { KernelFlow } from './kernel-flows.ts';
import type { FastMode, NftTable } from './nft-table.ts';
import type { NetworkPolicy } from './policy.ts';
import { type JudgeContext, judge } from './proxy.ts';

export function fastMode(policy: NetworkPolicy): FastMode {
  return policy.mode === 'none' ? 'off' : policy.mode;
}

export class SandboxFastPath {
  private queue: Promise<void> = Promise.resolve();

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

  /** After the policy changed: the chain rewritten and every set emptied, in one transaction. */
  policyChanged(): Promise<void> {
    return this.enqueue(() => {
      const policy = this.judging.policy();
      return this.table.setMode(this.ifname, fastMode(policy), cidrElements(policy));
    });
  }

  /** The resolver's hook: what it answered for an allowed name enters the sets. */
  answered(name: string, addresses: string[], ttlSeconds: number): Promise<void> {
    return this.enqueue(() => {
      const policy = this.judging.policy();
      const elements = addresses.flatMap((address) => answerElements(policy, name, address, this.context));
      return this.table.addAnswers(this.ifname, elements, elementTtl(ttlSeconds));
    });
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
    });
  }

  remove(): Promise<void> {
    return this.enqueue(() => this.table.remove(this.ifname));
  }
}
