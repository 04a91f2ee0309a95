/**
 * The container runtime interface. Only `runner/runtime/` talks to an engine (Docker through
 * dockerode today); everything else uses these types, so Podman's Docker API, a gVisor runtime or
 * Kubernetes is a new implementation rather than edits everywhere.
 */
import type { Readable } from 'node:stream';

export interface SandboxLimits {
  /** Memory ceiling in bytes; swap is capped at the same value. */
  memoryBytes: number;
  /** CPU quota in units of 1e-9 CPUs (Docker's NanoCpus). */
  nanoCpus: number;
  /** Maximum number of processes and threads. */
  pidsLimit: number;
  /**
   * Sizes of the agent's writable tmpfs mounts (/tmp, /home/agent, /dev/shm), in bytes. tmpfs pages
   * are charged to the container's memory cgroup as they are written, so they count against
   * `memoryBytes`; these are ceilings, not reservations.
   */
  tmpBytes: number;
  homeBytes: number;
  shmBytes: number;
}

export interface ContainerSpec {
  sandboxId: string;
  image: string;
  /** Host directory (0700, owned by the agent uid) bind-mounted at /run/grexal. */
  hostRunDir: string;
  limits: SandboxLimits;
  /** An OCI runtime registered with the engine, such as `runsc`; the engine's default when absent. */
  runtime?: string;
  /** A desktop sandbox (its larger tmpfs defaults are already in `limits`). */
  desktop?: boolean;
}

export interface ContainerOutput {
  stdout: Readable;
  stderr: Readable;
}

export interface ExitStatus {
  exitCode: number;
  /** Set when the engine killed the container for exceeding its memory limit. */
  oomKilled?: boolean;
}

/** A created container; `remove()` is safe to call more than once and on every path. */
export interface ContainerHandle extends AsyncDisposable {
  readonly id: string;
  readonly sandboxId: string;
  /** Attach before `start()` so no output is lost. */
  attach(): Promise<ContainerOutput>;
  start(): Promise<void>;
  /** The host pid of the container's init once started: its network namespace is the sandbox's. */
  pid(): Promise<number>;
  wait(): Promise<ExitStatus>;
  /** SIGTERM to the init, then SIGKILL after `timeoutMs`. */
  stop(timeoutMs: number): Promise<void>;
  remove(): Promise<void>;
}

export interface EngineInfo {
  /** How the engine was reached, e.g. `unix:///var/run/docker.sock`. */
  endpoint: string;
  version: string;
  apiVersion: string;
  /** OCI runtimes registered with the engine (`runc`, `runsc`, …). */
  runtimes: string[];
  defaultRuntime: string;
  storageDriver: string;
  dataRoot: string;
}

export interface ImageInfo {
  tag: string;
  id: string;
  labels: Record<string, string>;
  sizeBytes: number;
}

export interface BuildProgress {
  /** One line of the engine's build output, already without trailing newline. */
  line: string;
}

export interface BuildImageOptions {
  tag: string;
  /** The build context as a tar stream (packed with tar-stream). */
  context: Readable;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onProgress?: (progress: BuildProgress) => void;
  signal?: AbortSignal;
}

export interface ContainerRuntime {
  /** Identifies this runner process in labels; leftovers of dead instances are reaped. */
  readonly instanceId: string;
  info(): Promise<EngineInfo>;
  image(tag: string): Promise<ImageInfo | undefined>;
  buildImage(options: BuildImageOptions): Promise<ImageInfo>;
  /** `docker import`: a root filesystem tar becomes an image. */
  importImage(rootfs: Readable, tag: string, options?: { signal?: AbortSignal }): Promise<ImageInfo>;
  createContainer(spec: ContainerSpec, options?: { signal?: AbortSignal }): Promise<ContainerHandle>;
  /** Removes containers whose runner instance is no longer alive; returns their sandbox ids. */
  reapLeftovers(): Promise<string[]>;
}

export const LABEL_SANDBOX = 'grexal.sandbox';
export const LABEL_RUNNER = 'grexal.runner';
