/** Small statistics for benchmarks: percentiles, medians and A/B ratios. */

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs `a` and `b` alternately for `pairs` rounds (a warm-up pair first, not counted), so that both
 * see the same machine state; returns every sample and the median of the per-pair ratios a/b.
 */
export async function alternate(
  pairs: number,
  a: () => Promise<number>,
  b: () => Promise<number>,
  onPair?: (i: number, a: number, b: number) => void,
): Promise<{ a: number[]; b: number[]; ratio: number }> {
  await a();
  await b();
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < pairs; i++) {
    // Swap the order every other round: neither side always runs right after the other.
    let x: number;
    let y: number;
    if (i % 2 === 0) {
      x = await a();
      y = await b();
    } else {
      y = await b();
      x = await a();
    }
    as.push(x);
    bs.push(y);
    onPair?.(i, x, y);
  }
  return { a: as, b: bs, ratio: median(as.map((x, i) => x / bs[i]!)) };
}

export const ms = (n: number): string => `${n.toFixed(1)} ms`;
