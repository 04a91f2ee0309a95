/**
 * A set of literal patterns matched in one left-to-right pass: a rolling hash of the first
 * `window` characters (the shortest pattern's length) finds candidate positions, and only those are
 * compared. Cost grows with the text, barely with the number of patterns: a 64 KiB key file yields
 * thousands of patterns, which one alternation RegExp would take seconds to compile and scan.
 */

const BASE = 0x01000193;

function hashOf(text: string, from: number, length: number): number {
  let h = 0;
  for (let j = from; j < from + length; j++) h = (Math.imul(h, BASE) + text.charCodeAt(j)) | 0;
  return h;
}

export interface Match {
  index: number;
  length: number;
}

export class PatternSet {
  readonly longest: number;
  readonly window: number;
  private readonly sorted: string[];
  /** Hash of a pattern's first `window` chars → patterns with that hash, longest first. */
  private readonly byHash = new Map<number, string[]>();
  private readonly topPower: number;
  private readonly firstChars: Set<number>;

  constructor(patterns: Iterable<string>) {
    this.sorted = [...new Set(patterns)].filter((p) => p.length > 0).sort();
    this.longest = this.sorted.reduce((max, p) => Math.max(max, p.length), 0);
    this.window = this.sorted.reduce((min, p) => Math.min(min, p.length), Math.min(this.longest, 8));
    this.firstChars = new Set(this.sorted.map((p) => p.charCodeAt(0)));
    let power = 1;
    for (let i = 1; i < this.window; i++) power = Math.imul(power, BASE);
    this.topPower = power;
    for (const p of [...this.sorted].sort((a, b) => b.length - a.length)) {
      const h = hashOf(p, 0, this.window);
      const list = this.byHash.get(h);
      if (list) list.push(p);
      else this.byHash.set(h, [p]);
    }
  }

  get size(): number {
    return this.sorted.length;
  }

  /** The first match at or after `from`: leftmost, and the longest pattern at that position. */
  find(text: string, from = 0): Match | undefined {
    const w = this.window;
    if (this.sorted.length === 0 || text.length - from < w) return undefined;
    let h = hashOf(text, from, w);
    for (let i = from; ; i++) {
      const candidates = this.byHash.get(h);
      if (candidates) {
        for (const p of candidates) if (text.startsWith(p, i)) return { index: i, length: p.length };
      }
      if (i + w >= text.length) return undefined;
      h = (Math.imul(h - Math.imul(text.charCodeAt(i), this.topPower), BASE) + text.charCodeAt(i + w)) | 0;
    }
  }

  /** Replaces every match, leftmost first and longest at each position. */
  replace(text: string, replacement: string): string {
    let out = '';
    let pos = 0;
    for (let m = this.find(text, 0); m; m = this.find(text, pos)) {
      out += text.slice(pos, m.index) + replacement;
      pos = m.index + m.length;
    }
    return pos === 0 ? text : out + text.slice(pos);
  }

  /** True when some pattern is longer than `text` and starts with it. */
  private extendable(text: string): boolean {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < text) lo = mid + 1;
      else hi = mid;
    }
    // Patterns that start with `text` sort right after it; an equal pattern comes first.
    for (const candidate of [this.sorted[lo], this.sorted[lo + 1]]) {
      if (candidate !== undefined && candidate.length > text.length && candidate.startsWith(text))
        return true;
    }
    return false;
  }

  /** Length of the longest suffix of `text` that more text could turn into a match. */
  pendingSuffix(text: string): number {
    for (let at = Math.max(0, text.length - this.longest + 1); at < text.length; at++) {
      if (this.firstChars.has(text.charCodeAt(at)) && this.extendable(text.slice(at)))
        return text.length - at;
    }
    return 0;
  }
}
