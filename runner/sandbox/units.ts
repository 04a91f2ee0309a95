/** Human units on the command line and in the API: `512m`, `1.5`, `30s`. */

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `90s`, `5m`, `1h`, `250ms`, or a bare number of seconds. Undefined when not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? 's'] ?? 1000);
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms) : undefined;
}

/** `512m`, `1g`, `256mb`, `1048576` (bytes). Undefined when not a size. */
export function parseBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmg])?i?b?$/i.exec(text.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * (SIZE_UNITS[(match[2] ?? 'b').toLowerCase()] ?? 1);
  return Number.isFinite(bytes) && bytes > 0 ? Math.floor(bytes) : undefined;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  return `${bytes} B`;
}
