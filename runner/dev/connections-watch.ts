/**
 * `grexal dev`'s live connections: edits to `.grexal/connections.json` while the agent runs become
 * the same changes the orchestrator makes through the API. A connection whose entry changed is
 * re-authorised or rotated (PUT), one whose entry was deleted is removed (DELETE). Applying is
 * opt-in (`--watch-connections`, the author's confirmation); without it an edit is only reported.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isGrexalError, ValidationError } from '../errors.ts';

export interface LiveCredentialTarget {
  updateCredential(connectionId: string, credential: unknown): Promise<{ restored: boolean }>;
  removeCredential(connectionId: string): Promise<void>;
}

export interface ConnectionsWatchOptions {
  /** Apply edits; false: report them only. */
  apply: boolean;
  log: (line: string) => void;
  /** How often the file is checked. Default 500 ms. */
  intervalMs?: number;
  /** A value the template left unfilled, which is never applied. */
  isPlaceholder?: (value: unknown) => boolean;
}

export interface ConnectionsWatch {
  /** Checks the file now (what the timer does); settles once its changes are applied. */
  check(): Promise<void>;
  close(): void;
}

type Entries = Record<string, unknown>;

const why = (error: unknown): string => {
  if (error instanceof ValidationError)
    return error.problems.map((p) => `${p.path || '(body)'}: ${p.message} [${p.code}]`).join('; ');
  if (isGrexalError(error)) return `${error.message} [${error.code}]`;
  return error instanceof Error ? error.message : String(error);
};

export function watchConnections(
  path: string,
  initial: Entries,
  target: LiveCredentialTarget,
  options: ConnectionsWatchOptions,
): ConnectionsWatch {
  const applied: Entries = { ...initial };
  let chain = Promise.resolve();
  /** The text last looked at: an unchanged file is not applied (or refused) again. */
  let last = '';

  const read = async (): Promise<Entries | undefined> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      options.log(`${path}: cannot read it (${(error as NodeJS.ErrnoException).code}); nothing changed`);
      return undefined;
    }
    if (text === last) return undefined;
    last = text;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Entries;
    } catch {
      // Reported below; a half-saved file is common while an editor writes.
    }
    options.log(`${path}: not a JSON object keyed by connection id; nothing changed`);
    return undefined;
  };

  const applyOne = async (id: string, next: unknown): Promise<void> => {
    if (!options.apply) {
      options.log(
        `${id} changed in ${path}: run grexal dev with --watch-connections to apply edits while the agent runs`,
      );
      return;
    }
    if (next !== undefined && options.isPlaceholder?.(next)) {
      options.log(`${id}: still the template's placeholder; not applied`);
      return;
    }
    try {
      if (next === undefined) {
        await target.removeCredential(id);
        options.log(`${id}: removed from the running agent`);
      } else {
        const { restored } = await target.updateCredential(id, next);
        options.log(`${id}: ${restored ? 're-authorised' : 'rotated'} in the running agent`);
      }
      if (next === undefined) delete applied[id];
      else applied[id] = next;
    } catch (error) {
      options.log(`${id}: not applied: ${why(error)}`);
    }
  };

  const check = (): Promise<void> => {
    chain = chain.then(async () => {
      const next = await read();
      if (!next) return;
      const ids = new Set([...Object.keys(applied), ...Object.keys(next)]);
      for (const id of ids) {
        const value = Object.hasOwn(next, id) ? next[id] : undefined;
        if (JSON.stringify(value) !== JSON.stringify(applied[id])) await applyOne(id, value);
      }
    });
    return chain;
  };

  const onChange = (): void => void check();
  watchFile(path, { interval: options.intervalMs ?? 500, persistent: false }, onChange);
  return { check, close: () => unwatchFile(path, onChange) };
}
