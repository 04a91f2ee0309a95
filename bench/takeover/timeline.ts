/**
 * bench/takeover's rounds as numbers: the phases it times, the clean room's log lines it collects,
 * and the timeline it prints of one runner's rounds.
 */
import pino from 'pino';
import { median } from '../lib/stats.ts';

export const PHASES = [
  'event',
  'tab',
  'load',
  'novnc',
  'wsOpen',
  'handshake',
  'firstRect',
  'drawn',
  'total',
] as const;
export type Phase = (typeof PHASES)[number];
export type Round = Record<Phase, number> & { at: Record<string, number>; cpu: Record<string, number> };

export const fmt = (n: number): string => n.toFixed(1).padStart(6);

/**
 * The clean room's log lines of this runner, in order (one per takeover: its steps in ms from
 * the cut, `at` the cut's epoch ms). Both runners log at info to such a sink, so neither pays
 * more for its logging than the other.
 */
export function cleanRoomSink(into: Record<string, number>[]) {
  return pino(
    { level: 'info' },
    {
      write(line: string) {
        const entry = JSON.parse(line) as { msg?: string } & Record<string, number>;
        if (entry.msg?.startsWith('clean room: agent cut off')) into.push(entry);
      },
    },
  );
}

const ROOM_STEPS = ['listMs', 'tabMs', 'closeMs', 'clearMs', 'pageMs', 'freezeAskMs', 'freezeMs'] as const;

/**
 * This runner's rounds as one timeline, ms from the agent's request: the cut, each clean-room
 * step, and the user's milestones (seen the link, tab opened, page loaded, WebSocket open, noVNC's
 * first update request, first rectangle back).
 */
export function printTimeline(rs: Round[], rooms: Record<string, number>[]): void {
  const user = ['seen', 'opened', 'loaded', 'wsOpen', 'requested', 'firstRect'] as const;
  const cols = ['cut', ...ROOM_STEPS.map((s) => s.replace('Ms', '')), ...user.map((u) => `u.${u}`)];
  console.log(`timeline (ms from the request)${cols.map((c) => c.padStart(10)).join('')}`);
  const rows = rs.map((r, i) => {
    // rooms[0] is the warm-up's.
    const room = rooms[i + 1];
    const cut = room ? room['at']! - r.at['asked']! : Number.NaN;
    const steps = ROOM_STEPS.map((s) => (room?.[s] === undefined ? Number.NaN : cut + room[s]!));
    return [cut, ...steps, ...user.map((u) => r.at[u]! - r.at['asked']!)];
  });
  for (const [i, row] of rows.entries())
    console.log(
      `  ${String(i + 1).padStart(2)}${' '.repeat(28)}${row.map((v) => fmt(v).padStart(10)).join('')}`,
    );
  const p50 = cols.map((_, c) => median(rows.map((row) => row[c]!).filter((v) => !Number.isNaN(v))));
  console.log(`  p50${' '.repeat(27)}${p50.map((v) => fmt(v).padStart(10)).join('')}`);
}
