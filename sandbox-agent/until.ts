/**
 * `until`: the condition that completes a takeover by itself (`request_takeover({ until })`),
 * shared by the runner (which validates it) and the desktop helper (which watches the browser).
 * Zod-free, so the helper in the sandbox does not load zod.
 *
 * - `url`: a glob over a page's full URL: `*` is any run of characters (slashes too), `?` any one,
 *   everything else literal. It must name a scheme (http, https or a star) and a host with at
 *   least one letter or digit, so no glob matches every site ("*", "https://*", "*://*" are
 *   refused). At most 2,000 characters; no spaces or control characters.
 * - `cookie`: the name of a cookie (an RFC 6265 token): met once the browser holds it, for any site.
 * Met when either holds (both given: whichever comes first).
 */

export interface Until {
  url?: string;
  cookie?: string;
}

export const UNTIL_URL_MAX = 2000;
export const UNTIL_COOKIE_MAX = 256;
/** RFC 6265 cookie-name: an RFC 2616 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const GLOB_SHAPE = /^(https?|\*):\/\/([^/?#]*)(.*)$/;

/** Why `until` is not acceptable, naming the field (`until.url`…), or undefined when it is. */
export function untilProblem(until: Until): { path: string; message: string } | undefined {
  if (until.url === undefined && until.cookie === undefined) {
    return { path: 'until', message: 'until needs url (a URL glob) or cookie (a cookie name), or both' };
  }
  if (until.url !== undefined) {
    const problem = urlGlobProblem(until.url);
    if (problem) return { path: 'until.url', message: problem };
  }
  if (until.cookie !== undefined) {
    if (until.cookie.length > UNTIL_COOKIE_MAX)
      return { path: 'until.cookie', message: `a cookie name is at most ${UNTIL_COOKIE_MAX} characters` };
    if (!TOKEN.test(until.cookie))
      return {
        path: 'until.cookie',
        message: "a cookie name is a token: letters, digits and !#$%&'*+-.^_`|~",
      };
  }
  return undefined;
}

function urlGlobProblem(glob: string): string | undefined {
  if (glob.length > UNTIL_URL_MAX) return `a URL glob is at most ${UNTIL_URL_MAX} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
  if (/[\s\u0000-\u001f\u007f]/.test(glob)) return 'a URL glob has no spaces or control characters';
  const shape = GLOB_SHAPE.exec(glob);
  if (!shape) return 'a URL glob starts with http://, https:// or *:// (e.g. "https://example.com/home*")';
  if (!/[A-Za-z0-9]/.test(shape[2]!))
    return 'a URL glob must name a host (a glob that matches every site would end any takeover at once)';
  return undefined;
}

/** A matcher for a valid glob (check untilProblem first). */
export function urlGlobMatcher(glob: string): (url: string) => boolean {
  const body = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  const re = new RegExp(`^${body}$`, 's');
  return (url) => re.test(url);
}
