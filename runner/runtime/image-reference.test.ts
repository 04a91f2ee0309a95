import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { parseOrThrow } from '../validation.ts';
import {
  IMAGE_NAME_MAX_LENGTH,
  imagePathSegment,
  imageReferenceSchema,
  isImageReference,
  parseImageReference,
} from './image-reference.ts';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('image references (distribution/reference grammar)', () => {
  it('accepts the forms Docker accepts', () => {
    const valid = [
      'grexal/agent',
      'grexal/agent:latest',
      'alpine',
      'grexal-dev/demo-agent',
      'grexal/a.b_c__d---e',
      'localhost/a',
      'localhost:5000/a/b:tag',
      `localhost:5000/a/b:tag@${DIGEST}`,
      `grexal/agent@${DIGEST}`,
      'registry.test/team/agent:v1.2.3-rc_1',
      'Registry.Test:443/team/agent',
      '[::1]:5000/a',
      'localhost:5000',
      `${'a'.repeat(IMAGE_NAME_MAX_LENGTH)}:${'t'.repeat(128)}`,
    ];
    expect(valid.filter((v) => !isImageReference(v))).toEqual([]);
  });

  it('splits host, path, tag and digest', () => {
    expect(parseImageReference(`localhost:5000/a/b:tag@${DIGEST}`)).toEqual({
      domain: 'localhost:5000',
      path: 'a/b',
      tag: 'tag',
      digest: DIGEST,
    });
    expect(parseImageReference('grexal/agent')).toEqual({ path: 'grexal/agent' });
  });

  it('refuses paths, NUL, upper case, spaces, empty parts and over-long names', () => {
    const invalid = [
      '',
      '../../etc/passwd',
      '../../127.0.0.1:1/x',
      './agent',
      'grexal/../agent',
      'grexal/agent\0',
      'a\0b',
      'Grexal/agent',
      'grexal/Agent',
      'grexal/ agent',
      'grexal/agent ',
      ' grexal/agent',
      'a//b',
      '/grexal/agent',
      'grexal/agent/',
      ':tag',
      '@sha256:abc',
      'grexal/agent:',
      'grexal/agent:-tag',
      `grexal/agent:${'t'.repeat(129)}`,
      'grexal/agent@sha256:abc',
      `grexal/agent@SHA256:${'a'.repeat(64)}`,
      'a'.repeat(IMAGE_NAME_MAX_LENGTH + 1),
      'grexal/agent?x=1',
      'grexal/agent#x',
      'grexal%2fagent',
      'grexal\\agent',
      'bad_host-/x',
      'host.test:port/x',
      'a-/b',
      'a..b/c',
      '\ud800',
      'grexal/agent:\ud800',
    ];
    expect(invalid.filter(isImageReference)).toEqual([]);
  });

  it('reports E_IMAGE_REFERENCE_INVALID with the path and the fix through the schema', () => {
    try {
      parseOrThrow(imageReferenceSchema, '../../127.0.0.1:1/x', 'request');
      expect.unreachable();
    } catch (error) {
      const problem = (error as ValidationError).problems[0];
      expect(problem).toMatchObject({ code: 'E_IMAGE_REFERENCE_INVALID', path: '' });
      expect(problem?.message).toContain('not a path');
      expect(problem?.fix).toContain('grexal/agent');
    }
  });

  it('leaves a valid reference unchanged in an engine path and refuses anything else there', () => {
    expect(imagePathSegment(`localhost:5000/a/b:tag@${DIGEST}`)).toBe(`localhost:5000/a/b:tag@${DIGEST}`);
    expect(() => imagePathSegment('../../127.0.0.1:1/x')).toThrow(ValidationError);
    expect(() => imagePathSegment('a\0b')).toThrow(/E_IMAGE_REFERENCE_INVALID|Invalid image reference/);
  });
});
