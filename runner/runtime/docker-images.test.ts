import { describe, expect, it } from 'vitest';
import { BuildLog, splitTag } from './docker-images.ts';

describe('BuildLog', () => {
  it('reports the failing step with its own output only', () => {
    const lines: string[] = [];
    const log = new BuildLog((l) => lines.push(l));
    log.push({ stream: 'Step 1/3 : FROM grexal/base\n ---> abc\n' });
    log.push({ stream: 'Step 2/3 : RUN apt-get install -y nodjs\n' });
    log.push({ stream: '\u001b[91mE: Unable to locate ' });
    log.push({ stream: 'package nodjs\u001b[0m\n' });
    log.push({ error: "The command '/bin/sh -c apt-get install -y nodjs' returned a non-zero code: 100" });
    const error = log.failure('grexal/agent');
    expect(error.code).toBe('E_IMAGE_BUILD_FAILED');
    expect(error.message).toContain(
      "Building 'grexal/agent' failed at Step 2/3 : RUN apt-get install -y nodjs",
    );
    expect(error.message).toContain('E: Unable to locate package nodjs');
    expect(error.message).not.toContain('---> abc');
    expect(lines).toContain('E: Unable to locate package nodjs');
  });
});

describe('splitTag', () => {
  it('defaults to latest and ignores a registry port', () => {
    expect(splitTag('grexal/base')).toEqual({ repo: 'grexal/base', tag: 'latest' });
    expect(splitTag('grexal/base:rootfs')).toEqual({ repo: 'grexal/base', tag: 'rootfs' });
    expect(splitTag('localhost:5000/grexal/base')).toEqual({
      repo: 'localhost:5000/grexal/base',
      tag: 'latest',
    });
  });
});
