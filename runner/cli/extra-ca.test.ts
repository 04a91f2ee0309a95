import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HELD_EXTRA_CA_CERTS, restoreExtraCaCerts } from './extra-ca.ts';

const CA = '/etc/ssl/certs/ca-certificates.crt';

describe('restoreExtraCaCerts', () => {
  it('puts a held NODE_EXTRA_CA_CERTS back and removes the hand-over variable', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', [HELD_EXTRA_CA_CERTS]: CA };
    expect(restoreExtraCaCerts(env)).toBe(true);
    expect(env).toEqual({ PATH: '/usr/bin', NODE_EXTRA_CA_CERTS: CA });
  });

  it('restores it for the processes spawned after it, with the inherited environment', () => {
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], [HELD_EXTRA_CA_CERTS]: CA };
    restoreExtraCaCerts(env);
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `process.stdout.write(JSON.stringify([process.env.NODE_EXTRA_CA_CERTS, process.env.${HELD_EXTRA_CA_CERTS}]))`,
      ],
      { env, encoding: 'utf8' },
    );
    expect(JSON.parse(child.stdout)).toEqual([CA, null]);
  });

  it('keeps an empty held value as it was (an empty variable stays set and empty)', () => {
    const env: NodeJS.ProcessEnv = { [HELD_EXTRA_CA_CERTS]: '' };
    expect(restoreExtraCaCerts(env)).toBe(true);
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '' });
  });

  it('changes nothing when nothing was held', () => {
    const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: CA };
    expect(restoreExtraCaCerts(env)).toBe(false);
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: CA });
    const bare: NodeJS.ProcessEnv = {};
    restoreExtraCaCerts(bare);
    expect(bare).toEqual({});
  });

  it('leaves a value set meanwhile alone, and still removes the hand-over variable', () => {
    const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/other.pem', [HELD_EXTRA_CA_CERTS]: CA };
    restoreExtraCaCerts(env);
    expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '/other.pem' });
  });
});
