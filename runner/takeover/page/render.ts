/**
 * The takeover page's HTML. Everything the agent wrote (reason, label) is escaped; the script
 * reads its data from an inert JSON element, so the CSP can forbid inline scripts.
 */
import { BOOT_SCRIPT } from './boot.ts';
import { PAGE_DATA_ELEMENT_ID, type PageData } from './page-data.ts';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** JSON that cannot end its <script> element or open a comment. */
function inertJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/**
 * Asset URLs are relative (`/takeover/<id>` → `/takeover/assets/…`) so a path prefix in front of
 * the runner still works; `?v=` names the build, so a browser may keep them (http.ts). The boot
 * script comes first: it opens the stream while the rest loads.
 */
export function renderPage(
  data: PageData,
  versions: AssetVersions = {},
  options: { boot?: boolean } = {},
): string {
  const title = data.label ? `Log in to ${data.label}` : 'The agent needs your help';
  const boot = options.boot === false ? '' : `<script>${BOOT_SCRIPT}</script>\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Grexal</title>
${boot}<link rel="stylesheet" href="${assetHref('takeover.css', versions)}">
<script type="module" src="${assetHref('takeover.js', versions)}"></script>
</head>
<body>
<header>
  <div class="prompt">
    <h1>${escapeHtml(title)}</h1>
    <p class="reason">${escapeHtml(data.reason)}</p>
  </div>
  <div class="meta">
    <span id="status" class="status" role="status">Connecting…</span>
    <span id="control" class="control" aria-live="polite"></span>
    <span class="latency-label">Latency <span id="latency" class="latency">–</span></span>
    <span id="time-left" class="time-left"></span>
  </div>
  <div class="actions">
    <button id="done" class="done" type="button" aria-keyshortcuts="Alt+Shift+D" title="Alt+Shift+D">Done</button>
    <button id="cancel" class="cancel" type="button" aria-keyshortcuts="Alt+Shift+C" title="Alt+Shift+C">Cancel</button>
    <button id="keyboard" class="keyboard" type="button" hidden>Keyboard</button>
  </div>
  <p id="control-why" class="control-why"></p>
</header>
<main id="screen" class="screen">
  <div id="end" class="end" hidden><h2></h2><p></p></div>
</main>
<input id="osk" class="osk" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" aria-label="Type into the sandbox">
<footer>
  <label for="paste">Paste into the sandbox</label>
  <input id="paste" type="text" autocomplete="off" spellcheck="false" placeholder="Paste here, then Ctrl+V in the desktop">
  <button id="paste-clipboard" type="button">Paste from clipboard</button>
  <span id="paste-note" class="note" aria-live="polite"></span>
  <span class="shortcuts">Done: Alt+Shift+D · Cancel: Alt+Shift+C</span>
</footer>
<script type="application/json" id="${PAGE_DATA_ELEMENT_ID}">${inertJson(data)}</script>
</body>
</html>
`;
}

/** Each asset's build version (its ETag's hash), when known. */
export type AssetVersions = Partial<Record<'takeover.js' | 'takeover.css', string>>;

function assetHref(name: keyof AssetVersions, versions: AssetVersions): string {
  const version = versions[name];
  return version ? `assets/${name}?v=${encodeURIComponent(version)}` : `assets/${name}`;
}

/** A short page for a link that no longer works (ended, wrong token, unknown). */
export function renderMessagePage(title: string, message: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Grexal</title>
<link rel="stylesheet" href="assets/takeover.css"></head>
<body class="message"><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></main></body>
</html>
`;
}
