/** The Docker implementation of ContainerRuntime: the only code that uses dockerode. */
import { PassThrough, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { AGENT_GID, AGENT_UID, FILES_ROOT, SANDBOX_RUN_DIR } from '../../sandbox-agent/protocol.ts';
import { fromDockerError, isHarmlessConflict, isNotFound } from './docker-errors.ts';
import { buildImage, engineInfo, importImage, inspectImage } from './docker-images.ts';
import { connectEngine } from './engine.ts';
import { currentInstanceId, isInstanceAlive } from './instance.ts';
import {
  type BuildImageOptions,
  type ContainerHandle,
  type ContainerOutput,
  type ContainerRuntime,
  type ContainerSpec,
  type EngineInfo,
  type ExitStatus,
  type ImageInfo,
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

/** The hardening every sandbox gets; exported so benchmarks and tests compare like with like. */
export function containerConfig(spec: ContainerSpec, instanceId: string): Dockerode.ContainerCreateOptions {
  const user = `${AGENT_UID}:${AGENT_GID}`;
  const owned = `uid=${AGENT_UID},gid=${AGENT_GID}`;
  return {
    Image: spec.image,
    User: user,
    Labels: { [LABEL_SANDBOX]: spec.sandboxId, [LABEL_RUNNER]: instanceId },
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
      NetworkMode: 'none',
      // The agent's output may hold secrets before masking: it must never reach Docker's log files.
      LogConfig: { Type: 'none', Config: {} },
      ...(spec.runtime ? { Runtime: spec.runtime } : {}),
    },
  };
}

class DockerContainer implements ContainerHandle {
  private removed = false;

  constructor(
    private readonly container: Dockerode.Container,
    private readonly modem: Dockerode['modem'],
    readonly sandboxId: string,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async attach(): Promise<ContainerOutput> {
    const stream = (await this.container
      .attach({ stream: true, stdout: true, stderr: true, logs: false })
      .catch((e: unknown) => Promise.reject(fromDockerError(e)))) as unknown as Readable;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.modem.demuxStream(stream, stdout, stderr);
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
    await this.container.start().catch((e: unknown) => {
      if (!isHarmlessConflict(e)) throw fromDockerError(e);
    });
  }

  async pid(): Promise<number> {
    const info = await this.container.inspect().catch((e: unknown) => Promise.reject(fromDockerError(e)));
    if (!info.State.Pid) throw fromDockerError(new Error(`container ${this.id} is not running`));
    return info.State.Pid;
  }

  async wait(): Promise<ExitStatus> {
    const result = (await this.container
      .wait({ condition: 'not-running' })
      .catch((e: unknown) => Promise.reject(fromDockerError(e)))) as { StatusCode: number };
    const status: ExitStatus = { exitCode: result.StatusCode };
    if (result.StatusCode === 137) {
      const state = await this.container.inspect().then(
        (i) => i.State,
        () => undefined,
      );
      if (state?.OOMKilled) status.oomKilled = true;
    }
    return status;
  }

  async stop(timeoutMs: number): Promise<void> {
    await this.container.stop({ t: Math.max(0, Math.ceil(timeoutMs / 1000)) }).catch((e: unknown) => {
      if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
    });
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    await this.container.remove({ force: true, v: true }).catch((e: unknown) => {
      if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
    });
    this.removed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

export class DockerRuntime implements ContainerRuntime {
  readonly instanceId = currentInstanceId();

  constructor(
    private readonly docker: Dockerode,
    private readonly endpoint: string,
  ) {}

  static async connect(options: { signal?: AbortSignal } = {}): Promise<DockerRuntime> {
    const { docker, endpoint } = await connectEngine(options);
    return new DockerRuntime(docker, endpoint);
  }

  info(): Promise<EngineInfo> {
    return engineInfo(this.docker, this.endpoint);
  }

  image(tag: string): Promise<ImageInfo | undefined> {
    return inspectImage(this.docker, tag);
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
    const container = await this.docker
      .createContainer({ ...containerConfig(spec, this.instanceId), abortSignal: options.signal })
      .catch((e: unknown) =>
        Promise.reject(fromDockerError(e, { image: spec.image, runtime: spec.runtime })),
      );
    return new DockerContainer(container, this.docker.modem, spec.sandboxId);
  }

  async reapLeftovers(): Promise<string[]> {
    const containers = await this.docker
      .listContainers({ all: true, filters: { label: [LABEL_SANDBOX, LABEL_RUNNER] } })
      .catch((e: unknown) => Promise.reject(fromDockerError(e)));
    const dead = containers.filter((c) => {
      const owner = c.Labels[LABEL_RUNNER];
      return owner !== this.instanceId && (!owner || !isInstanceAlive(owner));
    });
    await Promise.all(
      dead.map((c) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch((e: unknown) => {
            if (!isNotFound(e) && !isHarmlessConflict(e)) throw fromDockerError(e);
          }),
      ),
    );
    return dead.map((c) => c.Labels[LABEL_SANDBOX] ?? c.Id);
  }
}
