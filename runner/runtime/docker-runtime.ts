/** The Docker implementation of ContainerRuntime: the only code that uses dockerode. */
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { AGENT_GID, AGENT_UID, FILES_ROOT, SANDBOX_RUN_DIR } from '../../sandbox-agent/protocol.ts';
import { isConnectionError, withDeadline } from './docker-calls.ts';
import { type ContainerContext, DockerContainer } from './docker-container.ts';
import { fromDockerError, isHarmlessConflict, isNotFound } from './docker-errors.ts';
import { buildImage, engineInfo, importImage, inspectImage } from './docker-images.ts';
import { connectEngine, connectEngineAlongside, engineCandidates } from './engine.ts';
import { EngineWatch, type EngineWatchOptions } from './engine-watch.ts';
import { currentInstanceId, isInstanceAlive } from './instance.ts';
import {
  type BuildImageOptions,
  type ContainerHandle,
  type ContainerRuntime,
  type ContainerSpec,
  type EngineChange,
  type EngineInfo,
  type ImageInfo,
  LABEL_ROLE,
  LABEL_RUNNER,
  LABEL_SANDBOX,
} from './runtime.ts';

const MiB = 1024 * 1024;
const AGENT_HOME = '/home/agent';
/**
 * /tmp/grexal holds only the injected credential files (8 MiB in all by default, see
 * runner/inject), written by the supervisor: fixed, not the caller's to size.
 */
export const FILES_TMPFS_BYTES = 16 * MiB;
/** The longest grace period between SIGTERM and SIGKILL a caller may give an agent. */
export const MAX_STOP_GRACE_MS = 60_000;

/** The hardening every sandbox gets; exported so benchmarks and tests compare like with like. */
export function containerConfig(spec: ContainerSpec, instanceId: string): Dockerode.ContainerCreateOptions {
  const user = `${AGENT_UID}:${AGENT_GID}`;
  const owned = `uid=${AGENT_UID},gid=${AGENT_GID}`;
  return {
    Image: spec.image,
    User: user,
    Labels: {
      [LABEL_SANDBOX]: spec.sandboxId,
      [LABEL_RUNNER]: instanceId,
      [LABEL_ROLE]: spec.role ?? 'agent',
    },
    // The browser container's own init in place of the image's supervisor.
    ...(spec.command ? { Entrypoint: spec.command, Cmd: [] } : {}),
    // Past any grace a run can have: a plain `docker stop` then lets the supervisor end the agent
    // by the run's own grace (its SIGTERM, then SIGKILL) instead of Docker's 10 s cutting it short.
    // Fixed, not the run's: a pool entry is created before its run's options are known.
    StopTimeout: Math.ceil(MAX_STOP_GRACE_MS / 1000) + 5,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Memory: spec.limits.memoryBytes,
      MemorySwap: spec.limits.memoryBytes,
      NanoCpus: spec.limits.nanoCpus,
      ...(spec.cpuShares === undefined ? {} : { CpuShares: spec.cpuShares }),
      PidsLimit: spec.limits.pidsLimit,
      Tmpfs: {
        [FILES_ROOT]: `rw,nodev,nosuid,noexec,mode=0700,${owned},size=${FILES_TMPFS_BYTES}`,
        '/tmp': `rw,nodev,nosuid,mode=1777,size=${spec.limits.tmpBytes}`,
        [AGENT_HOME]: `rw,nodev,nosuid,mode=0700,${owned},size=${spec.limits.homeBytes}`,
      },
      Mounts: [{ Type: 'bind', Source: spec.hostRunDir, Target: SANDBOX_RUN_DIR, ReadOnly: false }],
      ShmSize: spec.limits.shmBytes,
      IpcMode: 'private',
      PublishAllPorts: false,
      // A namespace of its own with loopback only; runner/network wires the one link out, if any.
      // The browser container joins the agent's (the same policy, the agent's loopback servers):
      // its pid, mount, IPC and uts namespaces stay its own.
      NetworkMode: spec.role === 'browser' && spec.networkOf ? `container:${spec.networkOf}` : 'none',
      // The agent's output may hold secrets before masking: it must never reach Docker's log files.
      LogConfig: { Type: 'none', Config: {} },
      ...(spec.runtime ? { Runtime: spec.runtime } : {}),
    },
  };
}

export interface DockerRuntimeOptions extends EngineWatchOptions {
  /** See ContainerContext.engineStopSettleMs. Default 12 000 (Docker's 10 s stop timeout, plus its exit). */
  engineStopSettleMs?: number;
  /**
   * Settles once the engine answered its first ping (connectEngineAlongside); engine calls that
   * fail wait for it, so that an engine that is not there fails as E_ENGINE_UNREACHABLE. Default:
   * already answered.
   */
  reachable?: Promise<void>;
}

export class DockerRuntime implements ContainerRuntime {
  readonly instanceId = currentInstanceId();
  private readonly watch: EngineWatch;
  /** Sandboxes whose container could not be removed while the engine was away. */
  private readonly abandoned = new Set<string>();
  private readonly context: ContainerContext;
  private readonly reachable: Promise<void>;

  constructor(
    private readonly docker: Dockerode,
    private readonly endpoint: string,
    options: DockerRuntimeOptions = {},
  ) {
    // dockerode's types omit ping's options; it does pass abortSignal through to the request.
    const ping = docker.ping.bind(docker) as unknown as (o: { abortSignal: AbortSignal }) => Promise<unknown>;
    this.watch = new EngineWatch(
      async (abortSignal) => void (await ping({ abortSignal })),
      endpoint,
      () => this.reapLeftovers(),
      options,
    );
    this.reachable = options.reachable ?? Promise.resolve();
    this.context = {
      docker,
      modem: docker.modem,
      endpoint,
      watch: this.watch,
      abandon: (sandboxId) => this.abandoned.add(sandboxId),
      engineStopSettleMs: options.engineStopSettleMs ?? 12_000,
    };
  }

  /**
   * `pingFirst: false` (one-shot callers: `grexal run`): with only one engine to try, its ping
   * runs beside the first calls instead of before them. Default true.
   */
  static async connect(
    options: { signal?: AbortSignal; pingFirst?: boolean } & DockerRuntimeOptions = {},
  ): Promise<DockerRuntime> {
    if (options.pingFirst === false) {
      const { docker, endpoint, reachable } = await connectEngineAlongside(engineCandidates(), options);
      return new DockerRuntime(docker, endpoint, { ...options, reachable });
    }
    const { docker, endpoint } = await connectEngine(options);
    return new DockerRuntime(docker, endpoint, options);
  }

  onEngineChange(listener: (change: EngineChange) => void): () => void {
    return this.watch.onChange(listener);
  }

  info(): Promise<EngineInfo> {
    return engineInfo(this.docker, this.endpoint);
  }

  image(tag: string): Promise<ImageInfo | undefined> {
    return inspectImage(this.docker, tag, this.endpoint);
  }

  buildImage(options: BuildImageOptions): Promise<ImageInfo> {
    return buildImage(this.docker, options);
  }

  importImage(rootfs: Readable, tag: string, options: { signal?: AbortSignal } = {}): Promise<ImageInfo> {
    return importImage(this.docker, rootfs, tag, options);
  }

  async createContainer(
    spec: ContainerSpec,
    options: { signal?: AbortSignal } = {},
  ): Promise<ContainerHandle> {
    options.signal?.throwIfAborted();
    const created = withDeadline(
      'create',
      this.endpoint,
      (abortSignal) =>
        this.docker.createContainer({ ...containerConfig(spec, this.instanceId), abortSignal }),
      { signal: options.signal },
    ).catch(async (e: unknown) => {
      // An engine that is not there: the ping's error (which strategies were tried, the fix).
      await this.reachable;
      // The engine may have created it before the answer was lost: remove it once it is back.
      if (isConnectionError(e) || (e as { code?: string }).code === 'E_TIMEOUT')
        this.abandoned.add(spec.sandboxId);
      return Promise.reject(fromDockerError(e, { image: spec.image, runtime: spec.runtime }));
    });
    // A hung engine fails its ping long before the create's deadline; a create it answers later
    // is removed once it is back, as after a timeout.
    const reachable = this.reachable.catch((error: unknown) => {
      this.abandoned.add(spec.sandboxId);
      throw error;
    });
    const [container] = await Promise.all([created, reachable]);
    return new DockerContainer(container, this.context, spec.sandboxId);
  }

  async reapLeftovers(): Promise<string[]> {
    // Nothing to reap without an engine; the calls that need it report it missing.
    const answered = await this.reachable.then(
      () => true,
      () => false,
    );
    if (!answered) return [];
    const containers = await withDeadline('list containers', this.endpoint, (abortSignal) =>
      this.docker.listContainers({
        all: true,
        filters: { label: [LABEL_SANDBOX, LABEL_RUNNER] },
        abortSignal,
      }),
    ).catch((e: unknown) => Promise.reject(fromDockerError(e)));
    const abandoned = new Set(this.abandoned);
    const dead = containers.filter((c) => {
      const owner = c.Labels[LABEL_RUNNER];
      if (owner === this.instanceId) return abandoned.has(c.Labels[LABEL_SANDBOX] ?? '');
      return !owner || !isInstanceAlive(owner);
    });
    await Promise.all(
      dead.map((c) =>
        withDeadline('remove', this.endpoint, (abortSignal) =>
          this.docker.getContainer(c.Id).remove({ force: true, v: true, abortSignal }),
        ).catch((e: unknown) => {
          if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
        }),
      ),
    );
    // Every abandoned sandbox is settled now: its container was removed, or it never existed.
    for (const id of abandoned) this.abandoned.delete(id);
    return dead.map((c) => c.Labels[LABEL_SANDBOX] ?? c.Id);
  }
}
