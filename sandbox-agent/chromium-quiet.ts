/**
 * What keeps a Chromium quiet: nothing it does on its own reaches the network. A sandbox's network
 * events, and its `allow` policy's refusals, then show what the agent and the user did, nothing of
 * Chromium's; a developer's local browser asks nothing of a closed network. Used by the desktop's
 * Chromium (desktop.ts), by `grexal dev --browser local` (runner/browser/local-chromium.ts), and
 * by the tests' and benchmarks' viewers (examples/scripted-user.ts).
 *
 * The last two switches and the last feature were found by a net log of an idle Chromium 156 that had all the others:
 * it still fetched clients2.google.com/time (network time), update.googleapis.com (the on-device
 * model manifest, an on-demand component install that --disable-component-update does not stop) and
 * accounts.google.com/ListAccounts (the Google cookie jar, which no switch or pref turns off).
 */
const QUIET_SWITCHES = [
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-breakpad',
  '--metrics-recording-only',
  '--no-pings',
  '--no-service-autorun',
  '--password-store=basic',
  '--use-mock-keychain',
  // A manifest read from this (absent) file instead of downloaded: no model manifest is fetched.
  '--optimization-guide-manifest-override=/nonexistent/grexal-no-model-manifest',
  // Google's sign-in origin moved to a closed loopback port: ListAccounts fails locally, with no
  // DNS query, and accounts.google.com is an ordinary site to this browser (no sign-in bubble over
  // a user's Google login in a takeover).
  '--gaia-url=http://127.0.0.1:9',
];

const QUIET_FEATURES = [
  'Translate',
  'MediaRouter',
  'DialMediaRouteProvider',
  'OptimizationHints',
  'AutofillServerCommunication',
  'NetworkTimeServiceQuerying',
];

/**
 * The quiet switches and one --disable-features list (a second --disable-features would replace
 * the first): the quiet features and `moreDisabled`.
 */
export function quietChromiumFlags(moreDisabled: readonly string[] = []): string[] {
  return [...QUIET_SWITCHES, `--disable-features=${[...QUIET_FEATURES, ...moreDisabled].join(',')}`];
}
