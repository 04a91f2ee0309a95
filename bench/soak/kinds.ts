/** The kinds of sandbox the soak mixes, each with the ending it should get. */
import type { CreateSandboxBody } from '../../runner/api/index.ts';

export type Kind = 'ok' | 'crash' | 'oom' | 'timeout' | 'delete';
export const KINDS: Kind[] = ['ok', 'crash', 'oom', 'timeout', 'delete'];

const MiB = 1024 * 1024;
const IMAGE = 'grexal/agent';

/** A small seeded generator (mulberry32): the same seed gives the same run. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Plan {
  kind: Kind;
  body: CreateSandboxBody;
  /** For `delete`: ms after `running` before the DELETE. */
  deleteAfterMs?: number;
  /** The exit reason the runner should report. */
  expected: string;
}

export function plan(kind: Kind, rand: () => number): Plan {
  const seconds = (0.2 + rand() * 2.8).toFixed(2);
  switch (kind) {
    case 'ok':
      return {
        kind,
        expected: 'exited',
        body: { image: IMAGE, command: ['sh', '-c', `echo soak; sleep ${seconds}`], stopTimeoutMs: 1_000 },
      };
    case 'crash':
      // The agent dies of a signal, as a crashing process does.
      return {
        kind,
        expected: 'exited',
        body: {
          image: IMAGE,
          command: ['sh', '-c', `sleep ${seconds}; kill -SEGV $$`],
          stopTimeoutMs: 1_000,
        },
      };
    case 'oom':
      return {
        kind,
        expected: 'oom',
        body: {
          image: IMAGE,
          command: ['python3', '-c', 'b = []\nwhile True: b.append(bytearray(1 << 20))'],
          limits: { memoryBytes: 48 * MiB },
          stopTimeoutMs: 1_000,
        },
      };
    case 'timeout':
      return {
        kind,
        expected: 'timeout',
        body: {
          image: IMAGE,
          command: ['sleep', '600'],
          limits: { timeoutMs: 1_000 + Math.round(rand() * 2_000) },
          stopTimeoutMs: 1_000,
        },
      };
    case 'delete':
      return {
        kind,
        expected: 'destroyed',
        deleteAfterMs: 200 + Math.round(rand() * 2_800),
        body: { image: IMAGE, command: ['sleep', '600'], stopTimeoutMs: 1_000 },
      };
  }
}
