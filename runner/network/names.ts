/**
 * What the sandbox's resolver answered: which names it gave which address, so the proxy can
 * judge a connection to that address by the name the sandbox asked for. Bounded and expiring, so
 * an agent resolving without end cannot grow the runner's memory.
 */
const MAX_ENTRIES = 4096;
const MIN_KEEP_MS = 5 * 60_000;

export class AnsweredNames {
  private readonly byAddress = new Map<string, Map<string, number>>();

  record(name: string, address: string, ttlSeconds: number, now = Date.now()): void {
    const names = this.byAddress.get(address) ?? new Map<string, number>();
    names.set(name, now + Math.max(MIN_KEEP_MS, ttlSeconds * 1000));
    this.byAddress.delete(address);
    this.byAddress.set(address, names);
    if (this.byAddress.size > MAX_ENTRIES) {
      const oldest = this.byAddress.keys().next().value;
      if (oldest !== undefined) this.byAddress.delete(oldest);
    }
  }

  namesFor(address: string, now = Date.now()): string[] {
    const names = this.byAddress.get(address);
    if (!names) return [];
    for (const [name, until] of names) if (until < now) names.delete(name);
    return [...names.keys()];
  }
}
