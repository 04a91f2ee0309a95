/**
 * A listener in a network namespace the test (or benchmark) creates: an address of TEST-NET-3
 * (203.0.113.k) inside the namespace, routed from the host over a veth whose host end holds
 * 192.0.2.k (TEST-NET-1). Packets to it never leave the host, yet the kernel forwards them like
 * any public destination, which is what the fast path needs to be measured and tested (the
 * override's `dialHost` to loopback goes through the proxy by construction). Everything is
 * removed with the namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';

export interface NetnsServer {
  /** The listener's address (203.0.113.k) and port. */
  address: string;
  port: number;
  /** The host end's address, the source every forwarded or proxied connection arrives from. */
  hostAddress: string;
  namespace: string;
  /** Lines the server printed after its port (a server may report what it saw). */
  lines: string[];
  close(): void;
}

const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Starts `node -e script` inside a fresh namespace; the script listens on `HOST` and prints its port. */
export async function startNetnsServer(script: (host: string) => string): Promise<NetnsServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const k = randomInt(2, 250);
    const namespace = `grexal-test-${process.pid}-${k}`;
    const [hostIf, farIf] = [`gxt${k}h`, `gxt${k}n`];
    const [address, hostAddress] = [`203.0.113.${k}`, `192.0.2.${k}`];
    try {
      ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', farIf]);
    } catch (error) {
      lastError = error;
      continue; // taken by a concurrent run
    }
    const close = () => {
      try {
        ip(['link', 'del', hostIf]);
      } catch {}
      try {
        ip(['netns', 'del', namespace]);
      } catch {}
    };
    try {
      ip(['netns', 'add', namespace]);
      ip(['link', 'set', farIf, 'netns', namespace]);
      writeFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, '1');
      ip(['addr', 'add', `${hostAddress}/32`, 'dev', hostIf]);
      ip(['link', 'set', hostIf, 'up']);
      ip(['route', 'add', `${address}/32`, 'dev', hostIf]);
      const inside = (args: string[]) => ip(['-n', namespace, ...args]);
      inside(['link', 'set', 'lo', 'up']);
      inside(['addr', 'add', `${address}/32`, 'dev', farIf]);
      inside(['link', 'set', farIf, 'up']);
      inside(['route', 'add', `${hostAddress}/32`, 'dev', farIf]);
      inside(['route', 'add', 'default', 'via', hostAddress, 'dev', farIf, 'onlink']);
    } catch (error) {
      close();
      throw error;
    }
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', script(address)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      let buffered = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        for (const line of parts) {
          if (lines.length === 0 && /^\d+$/.test(line)) resolve(Number(line));
          lines.push(line);
        }
      });
      child.once('exit', (code) => reject(new Error(`the namespace's server exited ${code}`)));
    }).catch((error: unknown) => {
      close();
      throw error;
    });
    lines.shift();
    return {
      address,
      port,
      hostAddress,
      namespace,
      lines,
      close: () => {
        child.kill();
        close();
      },
    };
  }
  throw lastError;
}
