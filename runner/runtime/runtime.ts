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
  /**
   * `browser`: the desktop's browser container (docs/browser.md): the display and Chromium out of
   * the agent's reach, in the agent container's network namespace (`networkOf`, a started
   * container's id) and nothing else of it. Default `agent`.
   */
  role?: 'agent' | 'browser';
  /** For `browser`: the container whose network namespace it joins. */
  networkOf?: string;
  /** For `browser`: the entrypoint, in place of the image's (the supervisor). */
  command?: string[];
  /**
   * Relative CPU weight (Docker's CpuShares), for a pool entry while it starts: below a live
   * run's, so that warming it takes only the CPU the live runs leave; set back to the default once
   * the entry is ready (docs/pools.md). Absent: the engine's default (1024), as for every cold sandbox.
   */
  cpuShares?: number;
}

/** The kernel's default CPU weight (cgroup v1 `cpu.shares`): what a container without CpuShares gets. */
export const DEFAULT_CPU_SHARES = 1024;

export interface ContainerOutput {
  stdout: Readable;
  stderr: Readable;
}

/**
 * How the engine itself ended a run, when it did: `lost` when it crashed, hung or became
 * unreachable while the container ran (the container's fate is unknown; it is removed once the
 * engine answers again); `stopped` when it shut down cleanly, stopping the container with its own
 * signal before it went.
 */
export interface EngineEnd {
  /**
   * `lost`: it crashed, hung or went unreachable; `stopped`: it shut down cleanly, signalling the
   * container on its way; `killed`: it signalled the container at someone else's request (an
   * operator's `docker stop` or `docker kill`) and stayed.
   */
  kind: 'lost' | 'stopped' | 'killed';
  /** How the engine was reached, e.g. `unix:///var/run/docker.sock`. */
  endpoint: string;
  /** What was seen, e.g. `the wait stream closed and /_ping was refused (ECONNREFUSED)`. */
  detail: string;
}

export interface ExitStatus {
  /** The container's exit code as the engine reported it; -1 when the engine went before reporting one. */
  exitCode: number;
  /**
   * The cgroup's own record that a process of the container (the agent or any child) was killed
   * for memory, whatever the exit code. False when unknown (the engine went before telling).
   */
  oomKilled: boolean;
  /** Set when the engine, not the agent, ended the run. */
  engine?: EngineEnd;
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
  /**
   * Settles when the container has ended, or when the engine went away (crashed, hung, stopped):
   * never hangs, whatever the engine does. See ExitStatus.engine.
   */
  wait(): Promise<ExitStatus>;
  /** SIGTERM to the init, then SIGKILL after `timeoutMs`; bounded even when the engine hangs. */
  stop(timeoutMs: number): Promise<void>;
  /**
   * Freezes every process of the container (the cgroup freezer; `docker pause`): they get no CPU
   * and cannot act until `unpause()`. Used while a takeover is open (docs/browser.md).
   */
  pause(): Promise<void>;
  /** Thaws a paused container; a container that is not paused (or gone) is not an error. */
  unpause(): Promise<void>;
  /** Changes the running container's CPU weight (`docker update --cpu-shares`). */
  setCpuShares(shares: number): Promise<void>;
  /**
   * Bounded. When the engine cannot be reached, the removal is deferred: the runtime removes the
   * container once the engine answers again (or the next runner reaps it), and this resolves.
   */
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
  /**
   * Removes containers whose runner instance is no longer alive, and the containers this runtime
   * could not remove while its engine was away; returns their sandbox ids.
   */
  reapLeftovers(): Promise<string[]>;
  /**
   * The engine's reachability as this runtime watches it while containers run: `lost` when it
   * stopped answering, `restored` when it answers again (the deferred removals have been retried by
   * then). Returns the unsubscribe function.
   */
  onEngineChange(listener: (change: EngineChange) => void): () => void;
}

export interface EngineChange {
  type: 'lost' | 'restored';
  endpoint: string;
  /** For `restored`: the sandbox ids whose containers were removed on the way back. */
  reaped?: string[];
  /** For `lost`: what was seen. */
  detail?: string;
}

export const LABEL_SANDBOX = 'grexal.sandbox';
export const LABEL_RUNNER = 'grexal.runner';
/** `agent` or `browser` (a desktop sandbox has one of each; both carry the sandbox's labels). */
export const LABEL_ROLE = 'grexal.role';
