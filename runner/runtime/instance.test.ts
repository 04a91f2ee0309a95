import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { currentInstanceId, instanceDirName, isInstanceAlive } from './instance.ts';

describe('runner instances', () => {
  it('names this process and finds it alive', () => {
    const id = currentInstanceId();
    expect(id.startsWith(`${hostname()}/${process.pid}-`)).toBe(true);
    expect(isInstanceAlive(id)).toBe(true);
    expect(instanceDirName(id)).toMatch(/^\d+-\d+$/);
  });

  it('finds a recycled pid or a gone process dead', () => {
    const [, startTime] = instanceDirName(currentInstanceId()).split('-');
    expect(isInstanceAlive(`${hostname()}/${process.pid}-${Number(startTime) + 1}`)).toBe(false);
    expect(isInstanceAlive(`${hostname()}/999999999-1`)).toBe(false);
    expect(isInstanceAlive('garbage')).toBe(false);
  });

  it('leaves other hosts to themselves', () => {
    expect(isInstanceAlive('some-other-host/1-1')).toBe(true);
  });
});
