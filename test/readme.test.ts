/**
 * The README's examples, run as written: a newcomer copies them after the two commands, so each
 * must work from a clone exactly as printed (`npx grexal …`, `node examples/library.mjs`).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collected, newStateDir, REPO, removeStateDir } from './helpers.ts';

function shell(
  command: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return collected(spawn('sh', ['-c', command], { cwd: REPO, env: { ...process.env, ...env } }));
}

/** Every `$ command` line of the README's sh blocks, with the output lines printed under it. */
async function readmeTranscripts(): Promise<Array<{ command: string; output: string[] }>> {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const found: Array<{ command: string; output: string[] }> = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let current: { command: string; output: string[] } | undefined;
    for (const line of (block[1] ?? '').split('\n')) {
      if (line.startsWith('$ ')) {
        current = { command: line.slice(2), output: [] };
        found.push(current);
      } else if (line.trim()) current?.output.push(line);
    }
  }
  return found;
}

describe('the README', () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await newStateDir();
  });
  afterAll(async () => {
    await removeStateDir(stateDir);
  });

  it('prints what its `npx grexal run` transcript says, exit code included', async () => {
    const transcripts = await readmeTranscripts();
    const run = transcripts.find((t) => t.command.startsWith('npx grexal run '));
    const exit = transcripts.find((t) => t.command === 'echo $?');
    expect(run, 'the README shows a `$ npx grexal run` example').toBeDefined();
    expect(exit, 'and its exit code').toBeDefined();
    const result = await shell(`${run?.command}; echo $?`, { GREXAL_STATE_DIR: stateDir });
    expect(result.stdout.trim().split('\n')).toEqual([...(run?.output ?? []), ...(exit?.output ?? [])]);
  });

  it('has a library example that runs as written and masks the credential it hands the agent', async () => {
    const result = await shell('node examples/library.mjs', { GREXAL_STATE_DIR: stateDir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('"type":"exit"');
    expect(result.stdout).toContain('key: ***');
    expect(result.stdout).not.toContain('sk-example-not-a-real-key');
  });
});
