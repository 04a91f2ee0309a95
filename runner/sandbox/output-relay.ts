/**
 * The agent's output on its way to the sandbox's events: through the run's masking when it has
 * credentials, and given a bounded time to drain once the container has exited.
 */
import type { Readable } from 'node:stream';
import type { ContainerOutput, ExitStatus } from '../runtime/index.ts';
import type { SandboxCredentials } from './ports.ts';

export type OutputStream = 'stdout' | 'stderr';

/** How long output may trail the container's exit before the exit is reported anyway. */
const OUTPUT_DRAIN_MS = 2_000;

/**
 * Relays both streams as text to `onText`, masked by `credentials` if the run has any (read by
 * the caller when the relay begins: a pool entry's arrive at its claim). Settles once both
 * streams have ended, closed or failed.
 */
export function relayOutput(
  output: ContainerOutput,
  credentials: Pick<SandboxCredentials, 'createMaskingStream'> | undefined,
  onText: (stream: OutputStream, text: string) => void,
): Promise<unknown> {
  return Promise.all([
    relayStream(output.stdout, 'stdout', credentials, onText),
    relayStream(output.stderr, 'stderr', credentials, onText),
  ]);
}

function relayStream(
  stream: Readable,
  name: OutputStream,
  credentials: Pick<SandboxCredentials, 'createMaskingStream'> | undefined,
  onText: (stream: OutputStream, text: string) => void,
): Promise<void> {
  const masked = credentials
    ? stream.setEncoding('utf8').pipe(credentials.createMaskingStream())
    : stream.setEncoding('utf8');
  masked.on('data', (text: string | Buffer) => onText(name, String(text)));
  return new Promise((resolve) => {
    masked.once('end', resolve);
    masked.once('close', resolve);
    masked.once('error', resolve);
  });
}

/** Settles once the relay has drained, or OUTPUT_DRAIN_MS after the exit if it has not. */
export function outputDrained(relayed: Promise<unknown>, status: ExitStatus): Promise<unknown> {
  // A lost engine may hold the output stream open for good: nothing more will come through it.
  const drainMs = status.engine?.kind === 'lost' ? 0 : OUTPUT_DRAIN_MS;
  return Promise.race([relayed, new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
}
