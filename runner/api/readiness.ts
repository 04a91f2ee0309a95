/**
 * `/readyz`: can this runner start a sandbox now? The engine must answer within a deadline and
 * hold the images sandboxes start from. One probe at a time, its answer reused briefly, so a
 * load balancer polling every instance costs the engine little. `/healthz` stays "the process is
 * alive", which a dead engine does not change.
 */
import type { z } from 'zod';
import { GrexalError, type Problem, toGrexalError } from '../errors.ts';
import type { ContainerRuntime } from '../runtime/index.ts';
import type { readyReportSchema } from './schemas.ts';

export interface ReadinessOptions {
  /** Images that must be in the engine. Default `grexal/agent` and `grexal/desktop`. */
  images?: string[];
  /** How long one probe's answer is reused. Default 2000. */
  cacheMs?: number;
  /** How long the engine may take to answer each check. Default 2000. */
  timeoutMs?: number;
}

export type ReadyReport = z.infer<typeof readyReportSchema>;

export const DEFAULT_READY_IMAGES = ['grexal/agent', 'grexal/desktop'];

/** Rejects with E_TIMEOUT after `ms`; the engine call itself runs on (the interface takes no signal). */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GrexalError('E_TIMEOUT', `${what} did not answer within ${ms} ms.`)),
      ms,
    );
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export class Readiness {
  private last?: { at: number; answer: Promise<ReadyReport | GrexalError> };
  private readonly images: string[];
  private readonly cacheMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly runtime: Pick<ContainerRuntime, 'image' | 'info'>,
    options: ReadinessOptions = {},
  ) {
    this.images = options.images ?? DEFAULT_READY_IMAGES;
    this.cacheMs = options.cacheMs ?? 2000;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /** The report, or E_NOT_READY listing every check that failed. Never rejects. */
  check(): Promise<ReadyReport | GrexalError> {
    const now = Date.now();
    if (!this.last || now - this.last.at >= this.cacheMs) this.last = { at: now, answer: this.probe() };
    return this.last.answer;
  }

  private async probe(): Promise<ReadyReport | GrexalError> {
    let endpoint: string;
    try {
      endpoint = (await withDeadline(this.runtime.info(), this.timeoutMs, 'The container engine')).endpoint;
    } catch (error) {
      const e = toGrexalError(error);
      return notReady([
        {
          code: e.code,
          path: 'engine',
          message: e.message,
          fix: 'Start the engine or check DOCKER_HOST (`grexal doctor` says what it finds); the images are checked once it answers.',
        },
      ]);
    }
    const missing = await Promise.all(
      this.images.map(async (image): Promise<Problem | undefined> => {
        try {
          const found = await withDeadline(
            this.runtime.image(image),
            this.timeoutMs,
            `The image lookup of ${image}`,
          );
          if (found) return undefined;
          return {
            code: 'E_IMAGE_NOT_FOUND',
            path: `images[${JSON.stringify(image)}]`,
            message: `Image '${image}' is not in the engine.`,
            fix: "Run `grexal images build` on the runner's machine.",
          };
        } catch (error) {
          const e = toGrexalError(error);
          return { code: e.code, path: `images[${JSON.stringify(image)}]`, message: e.message };
        }
      }),
    );
    const problems = missing.filter((p): p is Problem => p !== undefined);
    return problems.length > 0 ? notReady(problems) : { ready: true, engine: endpoint, images: this.images };
  }
}

export function notReady(problems: Problem[]): GrexalError {
  const head = problems.map((p) => p.message).join(' ');
  return new GrexalError('E_NOT_READY', `Not ready: ${head}`, { details: problems });
}
