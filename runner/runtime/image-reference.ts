/**
 * Image references by the grammar of distribution/reference (the one Docker, Podman and
 * Kubernetes share): `[host[:port]/]component(/component)*[:tag][@sha256:<64 hex>]`.
 *
 * Every reference a caller sends is checked here before any engine call: the engine puts the name
 * into a URL path (`/images/<name>/json`), and a name such as `../../127.0.0.1:1/x` made Docker
 * answer with a redirect to a host and port taken from the name.
 */
import { z } from 'zod';
import { type REQUEST_PROBLEM_CODES, ValidationError } from '../errors.ts';

/** distribution/reference's limit on the name (host and path, without tag or digest). */
export const IMAGE_NAME_MAX_LENGTH = 255;

export const IMAGE_REFERENCE_PROBLEM: keyof typeof REQUEST_PROBLEM_CODES = 'E_IMAGE_REFERENCE_INVALID';
export const IMAGE_REFERENCE_FIX =
  'Use an image reference such as `grexal/agent`, `grexal/agent:1.2` or `localhost:5000/team/agent@sha256:<64 hex>`: lower-case name components (a-z 0-9, joined by `.`, `_`, `__` or dashes) separated by single `/`, optionally a registry host[:port] first, then an optional `:tag` and `@sha256:` digest.';

// The pieces of distribution/reference's regexp.go.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`,
);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface ImageReference {
  /** The registry host[:port], when the first component names one. */
  domain?: string;
  /** The repository path: `grexal/agent`. */
  path: string;
  tag?: string;
  digest?: string;
}

/** Quotes a value for a message: bounded, and with control characters and lone surrogates escaped. */
function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** distribution/reference: the first component is a registry when it has `.` or `:`, or is localhost. */
function isDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** The reason `value` is not an image reference, or the parsed reference. */
export function parseImageReference(value: string): ImageReference | { error: string } {
  if (value === '') return { error: 'it is empty' };
  let rest = value;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      return { error: `the digest ${quote(digest)} is not sha256: followed by 64 lower-case hex digits` };
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      return {
        error: `the tag ${quote(tag)} is not 1-128 of A-Z a-z 0-9 _ . - starting with a letter, digit or _`,
      };
    }
  }
  if (rest === '') return { error: 'it has no name before its tag or digest' };
  if (rest.length > IMAGE_NAME_MAX_LENGTH) {
    return { error: `the name is ${rest.length} characters; at most ${IMAGE_NAME_MAX_LENGTH}` };
  }
  const components = rest.split('/');
  if (components.some((c) => c === '.' || c === '..')) {
    return { error: 'it has a `.` or `..` component: an image reference is not a path' };
  }
  let domain: string | undefined;
  if (components.length > 1 && isDomain(components[0] ?? '')) {
    domain = components.shift();
    if (!HOST.test(domain ?? ''))
      return { error: `the registry ${quote(domain ?? '')} is not a host[:port]` };
  }
  for (const component of components) {
    if (component === '')
      return { error: 'it has an empty name component (a leading, trailing or double /)' };
    if (!PATH_COMPONENT.test(component)) {
      return {
        error: `the name component ${quote(component)} is not lower-case letters and digits joined by . _ __ or dashes`,
      };
    }
  }
  return {
    ...(domain ? { domain } : {}),
    path: components.join('/'),
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
  };
}

export function isImageReference(value: string): boolean {
  return !('error' in parseImageReference(value));
}

/** The zod schema of every image a caller sends (API `image`, `--image`, `runner.create`). */
export const imageReferenceSchema = z
  .string()
  .superRefine((value, ctx) => {
    const parsed = parseImageReference(value);
    if ('error' in parsed) {
      ctx.addIssue({
        code: 'custom',
        message: `Invalid image reference ${quote(value)}: ${parsed.error}.`,
        params: { code: IMAGE_REFERENCE_PROBLEM, fix: IMAGE_REFERENCE_FIX },
      });
    }
  })
  .describe(
    'A Docker image reference: `[host[:port]/]name[/name…][:tag][@sha256:<64 hex>]` with lower-case name components, e.g. `grexal/agent`.',
  );

/**
 * The reference as it goes into an engine URL path. Refuses what is not a reference (defence in
 * depth: callers validated already) and percent-encodes each component; for a valid reference that
 * changes nothing, `:` and `@` being legal in a path segment.
 */
export function imagePathSegment(value: string): string {
  const parsed = parseImageReference(value);
  if ('error' in parsed) {
    throw new ValidationError(
      [
        {
          code: IMAGE_REFERENCE_PROBLEM,
          path: 'image',
          message: `Invalid image reference ${quote(value)}: ${parsed.error}.`,
          fix: IMAGE_REFERENCE_FIX,
        },
      ],
      'image reference',
    );
  }
  return value
    .split('/')
    .map((part) => encodeURIComponent(part).replace(/%3A/gi, ':').replace(/%40/gi, '@'))
    .join('/');
}
