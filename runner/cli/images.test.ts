import { describe, expect, it } from 'vitest';
import { parseBuildArgs } from './images.ts';

describe('grexal images build arguments', () => {
  it('defaults to everything without force', () => {
    expect(parseBuildArgs([])).toEqual({ force: false });
  });

  it('reads --only and --force', () => {
    expect(parseBuildArgs(['--only', 'agent,desktop', '--force'])).toEqual({
      only: ['agent', 'desktop'],
      force: true,
    });
  });

  it('refuses unknown images and flags with a message', () => {
    expect(parseBuildArgs(['--only', 'agent,gpu'])).toMatch(/--only takes .*got 'agent,gpu'/);
    expect(parseBuildArgs(['--only', ','])).toMatch(/--only takes/);
    expect(parseBuildArgs(['--fast'])).toMatch(/Unknown option '--fast'/);
  });
});
