/**
 * The clean room against service workers it cannot clear (real Chromium, no engine): a worker
 * the agent planted, before the takeover, on an origin other than its page's — where the login
 * posts to, or redirects through — or one a closed agent page registered again just after the
 * clearing. The runner clears only the page's own origin, so the user's page must bypass every
 * worker for the whole takeover: the worker here is live (it catches the agent's own post
 * first), and it never sees the user's. The same in a cross-site iframe of the login page, a
 * DevTools target of its own which the page's bypass does not reach (clean-room-frames.ts).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CdpSession, LocalChromium } from '../runner/browser/index.ts';
import { openCleanRoom } from '../runner/sandbox/clean-room.ts';

const CANARY = 'CANARY-pw-7f3a9c';
const logger = pino({ level: 'silent' });
/** What reached the site's POST /probe, and what the worker forwarded to /sw-saw. */
const posted: string[] = [];
const sawByWorker: string[] = [];
let server: Server;
let port: number;
let chromium: LocalChromium;
let session: CdpSession;

// Installs at once, takes every page of its origin, and answers a posted navigation itself after
// copying its body to /sw-saw: the agent's listener, as far as this test is concerned.
const WORKER = `
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  if (e.request.method !== 'POST') return;
  e.respondWith(e.request.text().then((body) =>
    fetch('/sw-saw', { method: 'POST', body }).then(() => new Response('<p id=r>caught</p>', { headers: { 'content-type': 'text/html' } }))));
});`;

beforeAll(async () => {
  server = createServer((req, res) => {
    const html = (body: string) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(body);
    };
    if (req.url === '/sw.js' || req.url === '/f/sw.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(WORKER);
    }
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        (req.url === '/sw-saw' ? sawByWorker : posted).push(body);
        html('<p id=r>posted</p>');
      });
      return;
    }
    // The login page, on 127.0.0.1; its form posts to the other origin, localhost, as a login's
    // form may post to its identity provider.
    if (req.url === '/login')
      return html(`<form method=post action="http://localhost:${port}/probe"><input name=password></form>`);
    // A login in a cross-site iframe (an identity provider's widget): 127.0.0.1 embeds localhost,
    // which Chromium runs in a renderer and a DevTools target of its own.
    if (req.url === '/framed') return html(`<iframe src="http://localhost:${port}/f/login"></iframe>`);
    if (req.url === '/f/login')
      return html('<form method=post action="/f/probe"><input name=password></form>');
    html('<p>home</p>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  chromium = await LocalChromium.launch({ logger, headless: true });
  session = new CdpSession(await chromium.open());
});

afterAll(async () => {
  session?.close();
  await chromium?.[Symbol.asyncDispose]();
  server?.close();
});

const call = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
  session.call(method, params, sessionId) as Promise<Record<string, unknown>>;

async function evaluate(sessionId: string, expression: string): Promise<unknown> {
  const answer = await call(
    'Runtime.evaluate',
    { expression, awaitPromise: true, returnByValue: true },
    sessionId,
  );
  return (answer['result'] as { value?: unknown }).value;
}

/** The value of `expression` in the page once it is truthy (polled: the page may be navigating). */
async function until(sessionId: string, expression: string): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const value = await evaluate(sessionId, expression).catch(() => undefined);
    if (value) return String(value);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never true in the page: ${expression}`);
}

async function attach(targetId: string): Promise<string> {
  const { sessionId } = (await call('Target.attachToTarget', { targetId, flatten: true })) as {
    sessionId: string;
  };
  return sessionId;
}

async function navigate(sessionId: string, url: string): Promise<void> {
  await call('Page.navigate', { url }, sessionId);
  await until(sessionId, `location.href === ${JSON.stringify(url)} && document.readyState === 'complete'`);
}

/** Submits the login form in the page at `targetId` with `value`; the answer's text. */
async function submit(targetId: string, value: string): Promise<string> {
  const sessionId = await attach(targetId);
  // The page may still be loading (the clean room's navigation answers once it has committed).
  await until(sessionId, `document.readyState === 'complete' && !!document.forms[0]`);
  await evaluate(
    sessionId,
    `(() => { const f = document.forms[0]; f.password.value = ${JSON.stringify(value)}; f.submit(); })()`,
  );
  const answer = await until(sessionId, `document.getElementById('r')?.textContent ?? ''`);
  await call('Target.detachFromTarget', { sessionId });
  return answer;
}

/** The login iframe's target (its own, cross-site) in the page, once it is there. */
async function frameId(): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const { targetInfos } = (await call('Target.getTargets')) as {
      targetInfos: { targetId: string; type: string; url: string }[];
    };
    const frame = targetInfos.find((t) => t.type === 'iframe' && t.url.endsWith('/f/login'));
    if (frame) return frame.targetId;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('no cross-site login iframe');
}

async function pageIds(): Promise<string[]> {
  const { targetInfos } = (await call('Target.getTargets')) as {
    targetInfos: { targetId: string; type: string }[];
  };
  return targetInfos.filter((t) => t.type === 'page').map((t) => t.targetId);
}

it("keeps a worker the clearing cannot reach from the user's page, on every origin it posts to", async () => {
  // The agent plants the worker on localhost, then leaves its tab on the login page (127.0.0.1).
  const { targetId } = (await call('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
  const agent = await attach(targetId);
  await navigate(agent, `http://localhost:${port}/`);
  const registered = await evaluate(
    agent,
    `navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready).then(() => 'ready')`,
  );
  expect(registered).toBe('ready');
  await navigate(agent, `http://127.0.0.1:${port}/login`);
  await call('Target.detachFromTarget', { sessionId: agent });
  // The worker is live: it catches the agent's own post.
  expect(await submit(targetId, 'AGENT-OWN')).toBe('caught');
  expect(sawByWorker).toEqual(['password=AGENT-OWN']);
  const back = await attach(targetId);
  await navigate(back, `http://127.0.0.1:${port}/login`);
  await call('Target.detachFromTarget', { sessionId: back });

  const steps: string[] = [];
  const room = await openCleanRoom({
    agent: { pause: async () => void steps.push('pause'), unpause: async () => void steps.push('unpause') },
    gate: { cut: () => steps.push('cut'), resume: () => steps.push('resume') },
    cdp: session.call,
    cdpEvents: session.onEvent,
    logger,
  });
  expect(room.url).toBe(`http://127.0.0.1:${port}/login`);
  const [userPage] = await pageIds();
  expect(await pageIds()).toHaveLength(1);
  // The user logs in: the post reaches the site, and the worker never sees it.
  expect(await submit(userPage!, CANARY)).toBe('posted');
  expect(posted).toContain(`password=${CANARY}`);
  expect(sawByWorker.join(' ')).not.toContain(CANARY);
  await room.close({ nextSpare: false });
  // Loopback pages count as the agent's own (servedByAgent): cut off, not frozen.
  expect(steps).toEqual(['cut', 'resume']);
});

it("keeps a worker away from a cross-site login iframe in the user's page", async () => {
  // The agent plants the worker from inside the iframe: in the iframe's own storage partition
  // (localhost under 127.0.0.1), the one the user's iframe will be in.
  const [tab] = await pageIds();
  const agent = await attach(tab!);
  await navigate(agent, `http://127.0.0.1:${port}/framed`);
  const inFrame = await attach(await frameId());
  const registered = await evaluate(
    inFrame,
    `navigator.serviceWorker.register('/f/sw.js').then(() => navigator.serviceWorker.ready).then(() => 'ready')`,
  );
  expect(registered).toBe('ready');
  await call('Target.detachFromTarget', { sessionId: inFrame });
  // The worker is live for that iframe: it catches the agent's own post there.
  expect(await submit(await frameId(), 'AGENT-FRAMED')).toBe('caught');
  expect(sawByWorker).toContain('password=AGENT-FRAMED');
  await navigate(agent, `http://127.0.0.1:${port}/framed`);
  await call('Target.detachFromTarget', { sessionId: agent });

  const room = await openCleanRoom({
    agent: { pause: async () => {}, unpause: async () => {} },
    gate: { cut: () => {}, resume: () => {} },
    cdp: session.call,
    cdpEvents: session.onEvent,
    logger,
  });
  expect(room.url).toBe(`http://127.0.0.1:${port}/framed`);
  expect(await submit(await frameId(), `${CANARY}-framed`)).toBe('posted');
  expect(posted).toContain(`password=${CANARY}-framed`);
  expect(sawByWorker.join(' ')).not.toContain(CANARY);
  await room.close({ nextSpare: false });
});
