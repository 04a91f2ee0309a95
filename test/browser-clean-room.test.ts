/**
 * The clean-room takeover against a hostile agent (docs/browser.md), real engine, real browser,
 * real stream: the agent plants every trap it can before request_takeover (a keylogger on the
 * login page and on every new document, CDP Network, Fetch interception and a screencast, an
 * exfiltration server on its own loopback, helpers trying ptrace, /proc/<pid>/mem,
 * process_vm_readv, X11 connections and the VNC socket) and proves each one on what it types
 * itself; the scripted user then logs in through the takeover stream with a canary password; the
 * agent reports everything it caught. The canary must be nowhere in it, nor in the agent's output
 * or the sandbox's events, while the login went through and the session cookie is the agent's.
 *
 * The login site is this test's own listener on the host's loopback, reached from the sandbox as
 * login.test through the runner's test-only resolver override. For the service-worker case the
 * same site is put on the sandbox's own loopback (a secure context, where a worker can exist; see
 * fixtures/hostile-agent/loopback-site.ts): the agent registers a worker there that copies every
 * POST, and plants a Cache Storage entry.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeTakeover } from '../examples/scripted-user.ts';
import { Runner } from '../runner/index.ts';
import { startTakeoverServer, type TakeoverServer } from '../runner/takeover/index.ts';
import { startLoopbackSite } from './fixtures/hostile-agent/loopback-site.ts';
import { docker, newStateDir, removeStateDir, sandboxContainers, sandboxDirs } from './helpers.ts';

const CANARY = 'canary-Zq7xPw3m';
const LOGIN_ADDRESS = '198.51.100.20';
/** The port of the login site on the sandbox's loopback (its own namespace: nothing else is there). */
const LOOPBACK_PORT = 8181;
const fixture = (name: string) =>
  readFileSync(new URL(`fixtures/hostile-agent/${name}`, import.meta.url), 'utf8');

// The demo login page's layout (examples/demo-agent/login-site.mjs): the scripted user clicks its fields.
const page = (body: string) => `<!doctype html><html><head><meta charset="utf-8"><title>Login</title><style>
  html, body { margin: 0; height: 100%; font: 28px sans-serif; background: #f4f1ea; }
  form { display: grid; grid-template-rows: 10vh 36vh 36vh 12vh; gap: 2vh; height: 100%; padding: 0 4vw; box-sizing: border-box; }
  input, button { font-size: 40px; border: 3px solid #334; border-radius: 12px; padding: 0 24px; }
  h1 { margin: 2vh 0 0; font-size: 32px; }
</style></head><body>${body}</body></html>`;

let stateDir: string;
let site: Server;
let siteOnSocket: Server;
let socketDir: string;
let sitePort: number;
let runner: Runner;
let server: TakeoverServer;
/** The runner's log lines (info and up): the clean room says there whether it used the spare tab. */
const runnerLog: string[] = [];
const posted: string[] = [];
/** Logins whose answer (with the session cookie) has gone out to the browser. */
let loginsAnswered = 0;

beforeAll(async () => {
  stateDir = await newStateDir();
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      if (req.method === 'POST') posted.push(`${req.url} ${body}`);
      if (req.method === 'POST' && req.url === '/login') {
        const form = new URLSearchParams(body);
        if (form.get('password') !== CANARY) return void res.writeHead(401).end(page('<h1>Wrong</h1>'));
        res.on('finish', () => loginsAnswered++);
        res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'session=s-1; Path=/; HttpOnly' });
        return void res.end(page(`<h1>Welcome, ${form.get('username')}</h1>`));
      }
      if (req.url === '/sw.js')
        return void res
          .writeHead(200, { 'content-type': 'text/javascript' })
          .end(fixture('service-worker.js'));
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        req.url === '/login'
          ? page(`<form method="post" action="/login"><h1>Log in</h1>
              <input name="username" placeholder="username" autocomplete="off">
              <input name="password" type="password" placeholder="password">
              <button type="submit">Log in</button></form>`)
          : 'ok',
      );
    });
  };
  site = createServer(serve);
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  // The same site for the sandbox's loopback (startLoopbackSite pipes to it).
  socketDir = await mkdtemp(join(tmpdir(), 'grexal-clean-room-site-'));
  siteOnSocket = createServer(serve);
  await new Promise<void>((resolve) => siteOnSocket.listen(join(socketDir, 'site.sock'), resolve));
  sitePort = (site.address() as AddressInfo).port;
  runner = await Runner.start({
    stateDir,
    logger: pino({ level: 'info' }, { write: (line: string) => void runnerLog.push(line) }),
    dangerouslyOverrideDns: { 'login.test': { address: LOGIN_ADDRESS, dialHost: '127.0.0.1' } },
  });
  server = await startTakeoverServer({ broker: runner.takeovers });
});

afterAll(async () => {
  await server?.close();
  await runner?.close();
  await new Promise((resolve) => site?.close(resolve));
  await new Promise((resolve) => siteOnSocket?.close(resolve));
  await rm(socketDir, { recursive: true, force: true });
  await removeStateDir(stateDir);
});

interface OriginStorage {
  registrations: number;
  caches: Record<string, string[]>;
}

interface Report {
  outcome: string;
  captured: {
    exfil: string[];
    binding: string[];
    keylog: string[];
    network: { url: string; postData: string }[];
    eventsBefore: number;
    eventsAfterRequest: number;
    frames: number;
    pages: { url: string; keylogger: unknown; text: string }[];
    cookies: string[];
    serviceWorker?: { controller: string | null; before: OriginStorage; after: OriginStorage | string };
    hunt?: { before: Hunt; after: Hunt };
  };
  attacks: Record<string, unknown>[];
}

/** What the agent found hunting for the spare tab (fixtures/hostile-agent/agent.mjs, hunt). */
interface Hunt {
  pages: number;
  own: number;
  tabs: number;
  foreign: string[];
  tried: Record<string, string>;
  guessed: number;
}

interface HostileRun {
  sandboxId: string;
  report: Report;
  exitCode: number | null;
  output: string;
  events: string;
  /** Whether the agent container was seen paused while the takeover was open. */
  paused: boolean | undefined;
  /** The OCI runtime of each of the sandbox's containers. */
  runtimes: string[];
}

/**
 * Runs the hostile agent in a desktop sandbox; the scripted user logs in with the canary through
 * the stream. `onLoopback`: the login site is on the sandbox's own loopback (and the agent plants
 * a service worker there) instead of login.test. Asserts that nothing is left afterwards.
 */
async function runHostile(
  runtime: string | undefined,
  onLoopback: boolean,
  extraEnv: Record<string, string> = {},
): Promise<HostileRun> {
  const sandbox = await runner.create({
    image: 'grexal/desktop',
    desktop: true,
    ...(runtime ? { runtime } : {}),
    command: ['node', '--input-type=module', '-e', fixture('agent.mjs')],
    env: {
      LOGIN_URL: onLoopback
        ? `http://127.0.0.1:${LOOPBACK_PORT}/login`
        : `http://login.test:${sitePort}/login`,
      ATTACKS_PY: fixture('attacks.py'),
      ...(onLoopback ? { SERVICE_WORKER: '1' } : {}),
      ...extraEnv,
    },
  });
  let output = '';
  const events: string[] = [];
  let paused: boolean | undefined;
  let runtimes: string[] = [];
  let user: Promise<void> | undefined;
  const agentContainer = async () => {
    const containers = await sandboxContainers(sandbox.id);
    runtimes = await Promise.all(
      containers.map(async (c) => (await docker.getContainer(c.Id).inspect()).HostConfig.Runtime ?? ''),
    );
    return docker.getContainer(containers.find((c) => c.Labels['grexal.role'] === 'agent')!.Id);
  };
  sandbox.onEvent((event) => {
    events.push(JSON.stringify(event));
    if (event.type === 'log') output += event.text;
    if (event.type === 'takeover.requested') {
      user = (async () => {
        const agent = await agentContainer();
        // The freeze is made while the link travels (the stream waits for it, so before the user
        // has typed anything): seen, bounded, watched until the user is done.
        let typed = false;
        const answeredBefore = loginsAnswered;
        const typing = completeTakeover(event.url, {
          username: 'ada',
          password: CANARY,
          answered: () => loginsAnswered > answeredBefore,
        }).finally(() => {
          typed = true;
        });
        for (let i = 0; i < 100 && !paused && !typed; i++) {
          paused = (await agent.inspect()).State.Paused;
          if (!paused) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await typing;
      })();
    }
  });
  await sandbox.start();
  // The agent waits (bounded) for its loopback site, which needs its namespace: running by now.
  const loopback = onLoopback
    ? await startLoopbackSite(
        (await (await agentContainer()).inspect()).State.Pid,
        LOOPBACK_PORT,
        join(socketDir, 'site.sock'),
      )
    : undefined;
  try {
    const exit = await sandbox.exited;
    await user?.catch((error: unknown) => {
      // The runner's own account of this sandbox (clean room, bridge, freeze) and its events:
      // a failure here must say where the takeover stalled.
      const said = runnerLog.filter((line) => line.includes(sandbox.id)).join('');
      throw new Error(
        `the scripted user failed: ${(error as Error).message} (agent paused: ${paused})\nagent output:\n${output}\nrunner log:\n${said}\nevents:\n${events.join('\n')}`,
      );
    });
    const line = output.split('\n').find((l) => l.startsWith('REPORT '));
    expect(line, output).toBeDefined();
    // Nothing is left: both containers and both directories.
    expect(await sandboxContainers(sandbox.id)).toEqual([]);
    expect((await sandboxDirs(stateDir)).filter((d) => d.includes(sandbox.id))).toEqual([]);
    return {
      sandboxId: sandbox.id,
      report: JSON.parse(line!.slice('REPORT '.length)) as Report,
      exitCode: exit.exitCode,
      output,
      events: events.join('\n'),
      paused,
      runtimes,
    };
  } finally {
    loopback?.close();
  }
}

/** What holds wherever the page is: the login went through, and the canary is nowhere of the agent's. */
function expectLoggedInWithoutTheCanary(run: HostileRun, runtime: string | undefined): void {
  const { report } = run;
  // Both containers (the agent's, the browser's) ran under the runtime asked for.
  expect(run.runtimes).toEqual([runtime ?? 'runc', runtime ?? 'runc']);
  // The login itself went through the stream, and the agent has the session.
  expect(run.exitCode).toBe(0);
  expect(report.outcome).toBe('completed');
  expect(posted).toContain(`/login username=ada&password=${CANARY}`);
  expect(report.captured.cookies).toContain('session');
  expect(report.captured.pages.map((p) => p.text).join(' ')).toContain('Welcome, ada');
  // No CDP event after the request, no keylogger left in any page.
  expect(report.captured.eventsAfterRequest).toBe(0);
  expect(report.captured.pages.every((p) => p.keylogger === null)).toBe(true);
  // The canary is nowhere the agent or its output could put it.
  expect(JSON.stringify(report)).not.toContain(CANARY);
  expect(run.output).not.toContain(CANARY);
  expect(run.events).not.toContain(CANARY);
}

// The same attacks under Docker's default runtime and under gVisor (issue 13: keep gVisor support).
// process_vm_readv on its own child: under runc Docker's default seccomp profile allows it only
// with CAP_SYS_PTRACE, which the sandbox drops; gVisor's Sentry (Debian's 2022-12 build) does not
// implement it at all.
describe.each([
  { runtime: undefined, name: 'runc', processVmReadv: 'Operation not permitted' },
  { runtime: 'runsc', name: 'runsc (gVisor)', processVmReadv: 'Function not implemented' },
])('a clean-room takeover against a hostile agent, under $name', ({ runtime, processVmReadv }) => {
  it('keeps the canary password from every trap the agent set, while the login succeeds for it', async () => {
    const run = await runHostile(runtime, false);
    const { captured, attacks } = run.report;
    expectLoggedInWithoutTheCanary(run, runtime);

    // Every trap worked on the agent's own typing and posting before the takeover...
    expect(captured.keylog.join('')).toContain('AGENT-TYPED');
    expect(captured.binding.join('')).toContain('AGENT-TYPED');
    expect(captured.network.some((n) => n.postData === 'AGENT-POST' && n.url.includes('/probe'))).toBe(true);
    expect(captured.eventsBefore).toBeGreaterThan(0);
    expect(captured.frames).toBeGreaterThan(0);
    expect(posted).toContain('/probe AGENT-POST');
    // ...and the agent was frozen while the user typed on a site it does not serve.
    expect(run.paused).toBe(true);

    // The helpers ran, before and after, and reached nothing of the browser container.
    expect(attacks).toHaveLength(2);
    for (const attack of attacks) {
      expect(attack['browser_pids']).toEqual([]);
      expect(attack['browser']).toEqual({});
      expect(String(attack['processes'])).not.toMatch(/chrom|Xtigervnc|matchbox/);
      // The same ptrace and /proc/<pid>/mem work on a process the agent can see (its own child);
      // process_vm_readv not even there (see processVmReadv above).
      expect(attack['own_child']).toEqual({
        ptrace: 'attached',
        proc_mem: 'read',
        process_vm_readv: processVmReadv,
      });
      expect(attack['x11_tried']).toBe(20);
      expect(attack['x11_connected']).toEqual([]);
      expect(attack['abstract_listeners']).toEqual([]);
      expect(attack['vnc_sockets']).toEqual([]);
      expect(attack['run_dir']).not.toContain('vnc.sock');
    }
  });

  it('removes the service worker and Cache Storage the agent planted on the login origin before the user types', async () => {
    const run = await runHostile(runtime, true);
    const { captured } = run.report;
    const sw = captured.serviceWorker!;
    expect(sw, run.output).toBeDefined();
    // The worker was real: it controlled the login page and copied a form's POST (a navigation,
    // as the login is) into Cache Storage and to the agent's listener; the planted entry was there.
    expect(sw.controller).toBe(`http://127.0.0.1:${LOOPBACK_PORT}/sw.js`);
    expect(sw.before.registrations).toBe(1);
    expect(sw.before.caches['planted']).toEqual(['PLANTED']);
    expect(sw.before.caches['loot']?.join(' ')).toContain('probe=AGENT-SW-POST');
    expect(posted).toContain('/probe probe=AGENT-SW-POST');
    const fromWorker = captured.exfil.filter((e) => e.startsWith('/sw:'));
    expect(fromWorker).toEqual(['/sw:probe=AGENT-SW-POST']);
    // After the takeover: no worker, no Cache Storage on the origin; the worker saw no other POST.
    expect(sw.after).toEqual({ registrations: 0, caches: {} });
    expectLoggedInWithoutTheCanary(run, runtime);
    // A page on the sandbox's loopback is taken for the agent's own: cut off, not frozen.
    expect(run.paused).toBe(false);
  });

  it("hides the runner's spare tab from an agent that hunts for it, and the takeover it serves stays clean", async () => {
    const run = await runHostile(runtime, false, { HUNT_SPARE: '1' });
    const hunt = run.report.captured.hunt!;
    expect(hunt, run.output).toBeDefined();
    // Before the takeover and after it (the next spare made by then), it found no page but its
    // own, one tab target per page, nothing to attach to, close or bring forward; no guess hit.
    for (const found of [hunt.before, hunt.after]) {
      expect(found.foreign).toEqual([]);
      expect(found.tried).toEqual({});
      expect(found.pages).toBe(found.own);
      expect(found.tabs).toBe(found.own);
      expect(found.guessed).toBe(0);
    }
    // Playwright's own view, after: the user's tab only (no second, blank page).
    expect(hunt.after.own).toBe(1);
    // The user's tab was the spare (its one about:blank entry checked after the cut), not a new one.
    const room = runnerLog
      .map((line) => JSON.parse(line) as { sandboxId?: string; msg?: string; spare?: boolean })
      .filter((entry) => entry.sandboxId === run.sandboxId && entry.msg?.startsWith('clean room'));
    expect(room.map((entry) => [entry.msg, entry.spare])).toEqual([
      ['clean room: agent cut off, page loaded afresh', true],
    ]);
    expectLoggedInWithoutTheCanary(run, runtime);
    expect(run.paused).toBe(true);
  });
});
