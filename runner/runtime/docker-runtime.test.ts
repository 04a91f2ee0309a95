import { describe, expect, it } from 'vitest';
import { containerConfig, FILES_TMPFS_BYTES, MAX_STOP_GRACE_MS } from './docker-runtime.ts';

describe('containerConfig', () => {
  it('sizes the tmpfs mounts and /dev/shm from the limits', () => {
    const MiB = 1024 * 1024;
    const config = containerConfig(
      {
        sandboxId: 'sbx_t',
        image: 'grexal/agent',
        hostRunDir: '/nonexistent',
        limits: {
          memoryBytes: 64 * MiB,
          nanoCpus: 1e9,
          pidsLimit: 64,
          tmpBytes: 3 * MiB,
          homeBytes: 5 * MiB,
          shmBytes: 7 * MiB,
        },
      },
      'host/1-1',
    );
    const tmpfs = config.HostConfig?.Tmpfs ?? {};
    expect(tmpfs['/tmp']).toContain(`size=${3 * MiB}`);
    expect(tmpfs['/home/agent']).toContain(`size=${5 * MiB}`);
    expect(tmpfs['/tmp/grexal']).toContain(`size=${FILES_TMPFS_BYTES}`);
    expect(config.HostConfig?.ShmSize).toBe(7 * MiB);
    // Docker's own stop never cuts a run's grace short: the supervisor applies it.
    expect(config.StopTimeout).toBeGreaterThan(MAX_STOP_GRACE_MS / 1000);
  });
});
