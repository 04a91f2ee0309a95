/** The types of login-site.mjs, for the TypeScript that serves it on the host (examples/demo.ts, tests). */
export interface LoginSite {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The username a session cookie's value belongs to. */
  userOf(session: string): string | undefined;
  /** Who logged in so far, in order. */
  loggedIn(): string[];
  close(): Promise<void>;
}
export function startLoginSite(
  port?: number,
  options?: { onLogin?: (username: string) => void },
): Promise<LoginSite>;
