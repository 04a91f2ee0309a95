import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCKERFILE_SPECS, hostNodeProblem, imagesToBuild, repoRoot } from './specs.ts';

const root = repoRoot();

/** The sources of every COPY/ADD in a Dockerfile (flags and the destination left out). */
function copySources(dockerfile: string): string[] {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => /^\s*(COPY|ADD)\s/i.test(l))
    .flatMap((l) => {
      const words = l
        .trim()
        .split(/\s+/)
        .slice(1)
        .filter((w) => !w.startsWith('--'));
      return words.slice(0, -1).map((w) => w.replace(/\/$/, ''));
    });
}

describe('Dockerfile contexts', () => {
  for (const spec of Object.values(DOCKERFILE_SPECS)) {
    it(`${spec.name}: the context lists exactly what the Dockerfile copies`, () => {
      const dockerfile = spec.sources.find((s) => s.as === 'Dockerfile');
      expect(dockerfile).toBeDefined();
      const text = readFileSync(join(root, dockerfile!.path), 'utf8');
      const listed = spec.sources.filter((s) => s.as !== 'Dockerfile').map((s) => s.as ?? s.path);
      expect(copySources(text).sort()).toEqual(listed.sort());
      expect(text).toMatch(/^ARG BASE=grexal\/\w+$/m);
      expect(text).toMatch(/^FROM \$\{BASE\}$/m);
    });
  }

  it('never packs node_modules wholesale', () => {
    const paths = Object.values(DOCKERFILE_SPECS).flatMap((s) => s.sources.map((x) => x.path));
    expect(paths).not.toContain('node_modules');
    expect(paths.filter((p) => p.startsWith('node_modules/'))).toEqual(['node_modules/playwright-core']);
  });
});

describe('the host Node the images take', () => {
  it("is this process's node, in both images", () => {
    for (const spec of Object.values(DOCKERFILE_SPECS))
      expect(spec.sources).toContainEqual(expect.objectContaining({ path: process.execPath, as: 'node' }));
  });

  it('is refused, with the fix, when it links a shared libnode', () => {
    expect(hostNodeProblem({ node_shared: false })).toBeUndefined();
    const problem = hostNodeProblem({ node_shared: true });
    expect(problem).toContain(process.execPath);
    expect(problem).toContain('standalone Node 20');
    // This machine's own Node is standalone: the images are built from it.
    expect(hostNodeProblem()).toBeUndefined();
  });
});

describe('imagesToBuild', () => {
  it('builds all three in order by default', () => {
    expect(imagesToBuild(undefined, new Set())).toEqual(['base', 'agent', 'desktop']);
  });

  it('adds a missing image the asked one is built on', () => {
    // The desktop is built on the base (it shares the agent's layers, not its image).
    expect(imagesToBuild(['desktop'], new Set(['base']))).toEqual(['desktop']);
    expect(imagesToBuild(['desktop'], new Set())).toEqual(['base', 'desktop']);
    expect(imagesToBuild(['agent'], new Set(['base', 'agent']))).toEqual(['agent']);
  });
});

describe('repoRoot', () => {
  it('finds the package root from inside it', () => {
    expect(readFileSync(join(root, 'package.json'), 'utf8')).toContain('"grexal-runner"');
  });
});

describe('Dockerfile.desktop', () => {
  /** Instructions without comments, continuation lines joined. */
  const instructions = (text: string): string[] =>
    text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join('\n')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((line) => line.replace(/\s+/g, ' ').trim())
      .filter(Boolean);

  it("repeats the agent image's first steps exactly, so Docker reuses their layers", () => {
    const root = repoRoot();
    const desktop = readFileSync(join(root, 'Dockerfile.desktop'), 'utf8');
    const marker = desktop.indexOf('# --- end of the steps shared with images/agent/Dockerfile ---');
    expect(marker).toBeGreaterThan(0);
    const shared = instructions(desktop.slice(0, marker));
    const agent = instructions(readFileSync(join(root, 'images/agent/Dockerfile'), 'utf8'));
    expect(shared.length).toBeGreaterThanOrEqual(4);
    expect(agent.slice(0, shared.length)).toEqual(shared);
  });
});
