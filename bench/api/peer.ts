/** The peer of bench/api: the docker CLI, and removing the peer's containers by label. */
import { spawn } from 'node:child_process';
import { DOCKER } from '../lib/docker-peer.ts';

/** Runs the docker CLI; resolves with its stdout, rejects with its stderr. */
export function docker(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`docker ${args[0]}: ${err.trim()}`)),
    );
  });
}

/**
 * Removes every container carrying the label, and waits until none is left (`--rm` may be removing
 * some at the same time, which `docker rm` reports as a conflict).
 */
export async function removeLabelled(label: string): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const ids = (await docker(['ps', '-aq', '--filter', `label=${label}`])).split('\n').filter(Boolean);
    if (ids.length === 0) return;
    await docker(['rm', '-f', ...ids]).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`containers labelled ${label} are still there; remove them with docker rm -f`);
}
