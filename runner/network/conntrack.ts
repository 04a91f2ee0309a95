/**
 * The destination a sandbox dialled, before nftables redirected it to the proxy. Node cannot ask
 * for SO_ORIGINAL_DST, so it is read from the kernel's connection table: the entry whose original
 * tuple starts at the sandbox's address and source port.
 */
import { readFile } from 'node:fs/promises';

const TABLE = '/proc/net/nf_conntrack';

export interface OriginalDestination {
  address: string;
  port: number;
}

export function findOriginal(
  table: string,
  source: string,
  sourcePort: number,
): OriginalDestination | undefined {
  const needle = `src=${source} `;
  const portNeedle = ` sport=${sourcePort} `;
  let found: OriginalDestination | undefined;
  let at = table.indexOf(needle);
  while (at !== -1) {
    const start = table.lastIndexOf('\n', at) + 1;
    const end = table.indexOf('\n', at);
    const line = table.slice(start, end === -1 ? undefined : end);
    const original = / tcp .*?src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) /.exec(line);
    if (original?.[1] === source && line.includes(portNeedle) && Number(original[3]) === sourcePort) {
      found = { address: original[2] ?? '', port: Number(original[4]) };
      // A fresh entry wins over one in TIME_WAIT left by an earlier connection of the same port.
      if (!/ (TIME_WAIT|CLOSE) /.test(line)) return found;
    }
    at = table.indexOf(needle, end === -1 ? table.length : end);
  }
  return found;
}

export async function originalDestination(
  source: string,
  sourcePort: number,
): Promise<OriginalDestination | undefined> {
  const table = await readFile(TABLE, 'utf8').catch(() => '');
  return findOriginal(table, source, sourcePort);
}
