/** One Docker container behind ContainerHandle: bounded calls, and a wait that never hangs. */
import { PassThrough, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import {
  describeFailure,
  engineSignalled,
  isConnectionError,
  pauseWithRetries,
  waitForExit,
  withDeadline,
} from './docker-calls.ts';
import { fromDockerError, isHarmlessConflict, isNotFound } from './docker-errors.ts';
import type { EngineWatch } from './engine-watch.ts';
import type { ContainerHandle, ContainerOutput, EngineEnd, ExitStatus } from './runtime.ts';

/** What a container needs of its runtime. */
export interface ContainerContext {
  docker: Dockerode;
  modem: Dockerode['modem'];
  endpoint: string;
  watch: EngineWatch;
  /** The container could not be removed (engine away): the runtime removes it when it is back. */
  abandon(sandboxId: string): void;
  /**
   * How long to watch for the engine going away after a container died of a signal the runner did
   * not send: Docker's clean shutdown stops every container (10 s is its default stop timeout) and
   * then stops answering, so such an exit is the engine's stop, not the agent's.
   */
  engineStopSettleMs: number;
}

/** How many times a wait stream that closed while the engine still answers is opened again. */
const WAIT_ATTEMPTS = 3;

export class DockerContainer implements ContainerHandle {
  private removed = false;
  private engineGone = false;
  private stopRequested = false;
  /** Epoch seconds, a little before the start: where this container's engine events begin. */
  private startedAt = 0;

  constructor(
    private readonly container: Dockerode.Container,
    private readonly context: ContainerContext,
    readonly sandboxId: string,
  ) {}

  get id(): string {
    return this.container.id;
  }

  private call<T>(what: string, call: (signal: AbortSignal) => Promise<T>, timeoutMs?: number): Promise<T> {
    return withDeadline(what, this.context.endpoint, call, { timeoutMs });
  }

  async attach(): Promise<ContainerOutput> {
    const stream = (await this.call('attach', (abortSignal) =>
      this.container.attach({ stream: true, stdout: true, stderr: true, logs: false, abortSignal }),
    ).catch((e: unknown) => Promise.reject(fromDockerError(e)))) as unknown as Readable;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.context.modem.demuxStream(stream, stdout, stderr);
    // A killed engine closes the stream (end, close or error, depending on when): output ends.
    const end = (): void => {
      stdout.end();
      stderr.end();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
    return { stdout, stderr };
  }

  async start(): Promise<void> {
    this.startedAt = Math.floor(Date.now() / 1000) - 2;
    await this.call('start', (abortSignal) => this.container.start({ abortSignal })).catch((e: unknown) => {
      if (!isHarmlessConflict(e)) throw fromDockerError(e);
    });
  }

  async pid(): Promise<number> {
    const info = await this.call('inspect', (abortSignal) => this.container.inspect({ abortSignal })).catch(
      (e: unknown) => Promise.reject(fromDockerError(e)),
    );
    if (!info.State.Pid) throw fromDockerError(new Error(`container ${this.id} is not running`));
    return info.State.Pid;
  }

  wait(): Promise<ExitStatus> {
    return this.context.watch.watch(async (lost) => {
      for (let attempt = 1; ; attempt++) {
        let exitCode: number;
        try {
          exitCode = await waitForExit(this.context.modem, this.id, lost);
        } catch (error) {
          if (lost.aborted) return this.lost(this.context.watch.lostDetail ?? 'the engine stopped answering');
          if (!isConnectionError(error)) throw fromDockerError(error);
          const seen = `the wait stream closed (${describeFailure(error)})`;
          if ((await this.context.watch.confirmLost(seen)) || attempt >= WAIT_ATTEMPTS)
            return this.lost(seen);
          continue;
        }
        return this.exited(exitCode);
      }
    });
  }

  private lost(detail: string): ExitStatus {
    this.engineGone = true;
    return { exitCode: -1, oomKilled: false, engine: this.engineEnd('lost', detail) };
  }

  private engineEnd(kind: EngineEnd['kind'], detail: string): EngineEnd {
    return { kind, endpoint: this.context.endpoint, detail };
  }

  /**
   * The exit as the engine reported it, with the cgroup's OOM record. Docker's `State.OOMKilled` is
   * set when the shim published a TaskOOM for the container's cgroup, for any of its processes,
   * not only the init: under cgroup v2 when the cgroup's `memory.events` `oom_kill` count rises
   * (older containerd: its `oom` count), under cgroup v1 on the `memory.oom_control` eventfd. This
   * machine is cgroup v1; test/faults-engine.test.ts checks a child killed for memory while the
   * agent exits 1 is named.
   */
  private async exited(exitCode: number): Promise<ExitStatus> {
    let oomKilled = false;
    const signalled = exitCode > 128 && !this.stopRequested;
    try {
      const info = await this.call(
        'inspect',
        (abortSignal) => this.container.inspect({ abortSignal }),
        10_000,
      );
      oomKilled = info.State?.OOMKilled === true;
    } catch (error) {
      // It answered the wait with a signal death the runner did not cause, then nothing more: it
      // is going away, and stopped the container on its way. Any other exit stays the agent's.
      if (signalled && (isConnectionError(error) || this.context.watch.lost)) {
        this.engineGone = true;
        return {
          exitCode,
          oomKilled,
          engine: this.engineEnd('stopped', 'the engine stopped the container and went away'),
        };
      }
    }
    const engine = signalled && !oomKilled ? await this.signalledBy() : undefined;
    if (engine === 'stopped') {
      this.engineGone = true;
      return { exitCode, oomKilled, engine: this.engineEnd('stopped', 'it stopped answering right after') };
    }
    if (engine === 'killed') {
      const detail = 'a signal sent through the engine, not by the runner or the agent';
      return { exitCode, oomKilled, engine: this.engineEnd('killed', detail) };
    }
    return { exitCode, oomKilled };
  }

  /**
   * Who sent a signal death the runner did not ask for. The engine (a `kill` event): its clean
   * shutdown if it then goes away, else someone's `docker stop` or `docker kill`. No event: the
   * agent killed itself, which costs no wait. Events that cannot be read: a shutdown still shows
   * by the engine going away, but nobody is named for a kill (the agent's own stays its exit).
   */
  private async signalledBy(): Promise<'stopped' | 'killed' | undefined> {
    const { docker, endpoint, watch, engineStopSettleMs } = this.context;
    const signalled = await engineSignalled(docker, endpoint, this.id, this.startedAt);
    if (signalled === false) return undefined;
    if (await watch.goingAway(engineStopSettleMs)) return 'stopped';
    return signalled ? 'killed' : undefined;
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopRequested = true;
    if (this.engineGone) return;
    const t = Math.max(0, Math.ceil(timeoutMs / 1000));
    // The engine answers once the container is down: its grace period, then the kill, plus slack.
    await this.call(
      'stop',
      (abortSignal) => this.container.stop({ t, abortSignal }),
      timeoutMs + 15_000,
    ).catch((e: unknown) => {
      if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
    });
  }

  async pause(): Promise<void> {
    await pauseWithRetries(() =>
      this.call('pause', (abortSignal) => this.container.pause({ abortSignal })).then(() => undefined),
    ).catch((e: unknown) => Promise.reject(fromDockerError(e)));
  }

  async unpause(): Promise<void> {
    if (this.engineGone || this.removed) return;
    await this.call('unpause', (abortSignal) => this.container.unpause({ abortSignal })).catch(
      (e: unknown) => {
        // Not paused (409, or 500 "is not paused" from some engines), or gone: nothing is frozen.
        if (isNotFound(e) || isHarmlessConflict(e) || /is not paused/.test(String((e as Error).message)))
          return;
        throw fromDockerError(e);
      },
    );
  }

  async setCpuShares(shares: number): Promise<void> {
    await this.call('update', (abortSignal) =>
      this.container.update({ CpuShares: shares, abortSignal }),
    ).catch((e: unknown) => Promise.reject(fromDockerError(e)));
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    if (this.engineGone || this.context.watch.lost) {
      this.abandon();
      return;
    }
    try {
      await this.call('remove', (abortSignal) =>
        this.container.remove({ force: true, v: true, abortSignal }),
      );
    } catch (e) {
      if (isConnectionError(e) || (e as { code?: string }).code === 'E_TIMEOUT') {
        this.abandon();
        return;
      }
      if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
    }
    this.removed = true;
  }

  private abandon(): void {
    this.removed = true;
    this.context.abandon(this.sandboxId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}
