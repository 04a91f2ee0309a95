/**
 * The browser container of a desktop sandbox (docs/browser.md): the display and Chromium run in a
 * container of their own beside the agent's, from the runner's grexal/desktop (never the agent's
 * image), hardened like the agent's, in the agent container's network namespace and nothing else
 * of it, with a host directory of its own that the agent's container does not mount. There the
 * runner finds vnc.sock (the takeover's stream) and cdp.sock (Chromium's DevTools pipe), and the
 * agent reaches the browser only through the runner's CDP relay.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { CDP_SOCKET_NAME, VNC_SOCKET_NAME } from '../../sandbox-agent/protocol.ts';
import { BrowserContainerUpstream, type CdpUpstream } from '../browser/index.ts';
import { GrexalError } from '../errors.ts';
import type { ContainerHandle, ContainerRuntime } from '../runtime/index.ts';
import { createHostRunDir, type HostRunDir, removeHostRunDir } from './host-dir.ts';
import type { ResolvedSandboxOptions } from './options.ts';

/** The runner's own desktop image: the browser container never runs the agent's image. */
export const DEFAULT_BROWSER_IMAGE = 'grexal/desktop';
/** The desktop helper's own deadline is 60 s; Node's boot and the engine's start come on top. */
const READY_TIMEOUT_MS = 75_000;
const MAX_READY_LINE = 64 * 1024;

export interface BrowserContainerDeps {
  runtime: ContainerRuntime;
  stateDir: string;
  logger: Logger;
  image?: string;
  /** See ContainerSpec.cpuShares. */
  cpuShares?: number;
}

export class BrowserContainer {
  private container?: ContainerHandle;
  private dir?: HostRunDir;
  private removed?: Promise<void>;

  private constructor(
    private readonly sandboxId: string,
    private readonly deps: BrowserContainerDeps,
  ) {}

  /**
   * Creates the browser container in `agent`'s network namespace once `agentStarted` settles
   * (joining a namespace needs its container running) and resolves once the desktop answers: the
   * VNC greeting and Chromium's DevTools. On failure everything made so far is removed.
   */
  static async start(
    sandboxId: string,
    options: ResolvedSandboxOptions,
    agent: ContainerHandle,
    agentStarted: Promise<unknown>,
    deps: BrowserContainerDeps,
  ): Promise<BrowserContainer> {
    const browser = new BrowserContainer(sandboxId, deps);
    try {
      await browser.provision(options, agent, agentStarted);
      return browser;
    } catch (error) {
      await browser.remove();
      throw error;
    }
  }

  private async provision(
    options: ResolvedSandboxOptions,
    agent: ContainerHandle,
    agentStarted: Promise<unknown>,
  ): Promise<void> {
    const { runtime, stateDir, logger } = this.deps;
    const { width, height } = options.desktop ?? { width: 1280, height: 800 };
    this.dir = await createHostRunDir(stateDir, runtime.instanceId, `${this.sandboxId}.browser`, logger);
    this.container = await runtime.createContainer({
      sandboxId: this.sandboxId,
      image: this.deps.image ?? DEFAULT_BROWSER_IMAGE,
      hostRunDir: this.dir.path,
      limits: options.limits,
      runtime: options.runtime,
      desktop: true,
      role: 'browser',
      networkOf: agent.id,
      cpuShares: this.deps.cpuShares,
      command: [
        '/usr/bin/tini',
        '-g',
        '--',
        'node',
        '/opt/grexal/desktop.mjs',
        String(width),
        String(height),
      ],
    });
    const output = await this.container.attach();
    // The desktop's own diagnostics (no credential is in this container): kept for the error.
    const tail: string[] = [];
    output.stderr.setEncoding('utf8').on('data', (text: string) => {
      tail.push(...text.split('\n').filter((line) => line.trim()));
      tail.splice(0, Math.max(0, tail.length - 8));
    });
    await agentStarted;
    await this.container.start();
    await readyLine(output.stdout, this.container, () => tail.join(' | '));
    logger.info({ containerId: this.container.id }, 'browser container ready');
  }

  /** See ContainerHandle.setCpuShares; nothing to change before the container exists. */
  async setCpuShares(shares: number): Promise<void> {
    await this.container?.setCpuShares(shares);
  }

  /** The host path of the desktop's RFB socket, in the browser container's directory. */
  get vncSocketPath(): string {
    return join(this.dir!.path, VNC_SOCKET_NAME);
  }

  /** Chromium's DevTools, for the runner's relay (one browser-level connection at a time). */
  upstream(): CdpUpstream {
    return new BrowserContainerUpstream(join(this.dir!.path, CDP_SOCKET_NAME));
  }

  /** Settles when the browser container ends (Chromium or the display died, or it was removed). */
  wait(): Promise<unknown> {
    return this.container?.wait() ?? Promise.resolve();
  }

  /** The container and its directory; idempotent, on every path. */
  remove(): Promise<void> {
    this.removed ??= (async () => {
      const results = await Promise.allSettled([this.container?.remove()]);
      if (this.dir) results.push(...(await Promise.allSettled([removeHostRunDir(this.dir)])));
      for (const result of results)
        if (result.status === 'rejected')
          this.deps.logger.error({ err: result.reason }, 'removing the browser container failed');
    })();
    return this.removed;
  }
}

/** The desktop helper's one line: `{"env":…}` once it answers, `{"error":…}` if it could not start. */
function readyLine(stdout: Readable, container: ContainerHandle, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const fail = (why: string): void => {
      cleanup();
      reject(new GrexalError('E_DESKTOP_UNAVAILABLE', `The sandbox's browser did not start: ${why}.`));
    };
    const timer = setTimeout(() => fail(`no answer within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer | string): void => {
      text += String(chunk);
      if (text.length > MAX_READY_LINE) return void fail('its helper printed too much');
      const end = text.indexOf('\n');
      if (end < 0) return;
      let message: { env?: unknown; error?: unknown };
      try {
        message = JSON.parse(text.slice(0, end)) as typeof message;
      } catch {
        return void fail('its helper printed a line that is not JSON');
      }
      if (typeof message.error === 'string') return void fail(message.error);
      cleanup();
      stdout.resume();
      resolve();
    };
    const onEnd = (): void => fail(`its container ended${stderr() ? `: ${stderr()}` : ''}`);
    const cleanup = (): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      stdout.off('end', onEnd);
    };
    stdout.on('data', onData);
    stdout.once('end', onEnd);
    void container.wait().then(
      (status) => fail(`its container exited with ${status.exitCode}${stderr() ? `: ${stderr()}` : ''}`),
      () => {},
    );
  });
}
