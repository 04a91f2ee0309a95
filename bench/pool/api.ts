/** bench/pool's calls to its own `grexal serve`: JSON over the API, and waiting for a pool to fill. */

export interface BenchApi {
  call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>>;
  /** Resolves once pool `name` has at least `ready` ready entries (bounded: 60 s). */
  waitReady(name: string, ready: number): Promise<void>;
}

export function benchApi(base: string, token: string): BenchApi {
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : {};
  };
  return {
    call,
    async waitReady(name, ready) {
      for (let i = 0; i < 1200; i++) {
        if (((await call('GET', `/v1/pools/${name}`))['ready'] as number) >= ready) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`pool ${name} never reached ${ready} ready`);
    },
  };
}
