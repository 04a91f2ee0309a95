/**
 * `grexal dev` with the local browser, end to end: a real engine, a real Chromium window on an Xvfb
 * this test starts, the agent (test/fixtures/dev-browser-agent, FROM grexal/agent) driving that
 * window through GREXAL_CDP_URL (the supervisor's forwarder, the runner's relay). The test is the
 * developer: it types into the window with xdotool (real X input, not the agent's relay) and
 * presses Enter on the CLI's stdin.
 *
 * The login site is served by the test on the host's loopback: the local browser is the
 * developer's own, on the developer's network, so that is where it logs in (a site inside the
 * sandbox would be out of its reach, as it is for the developer). The last case runs the README's
 * demo agent itself (examples/demo-agent) the same way, its own login site served here and handed
 * to it with --env DEMO_LOGIN_URL.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoginSite } from '../examples/demo-agent/login-site.mjs';
import { containersOfPid, docker, newStateDir, REPO, removeStateDir } from './helpers.ts';

const run = promisify(execFile);
const FIXTURE = join(REPO, 'test/fixtures/dev-browser-agent');
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;

let stateDir: string;
let agentDir: string;
let tmpRoot: string;
let xvfb: ChildProcess;
let display: string;
let site: Server;
let loginUrl: string;
const posts: string[] = [];

/** An X display number nobody uses. */
function freeDisplay(): number {
  for (let n = 90; n < 200; n++)
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) return n;
  throw new Error('no free X display number');
}

beforeAll(async () => {
  stateDir = await newStateDir();
  tmpRoot = await mkdtemp(join(tmpdir(), 'grexal-dev-browser-tmp-'));
  const n = freeDisplay();
  display = `:${n}`;
  xvfb = spawn('Xvfb', [display, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(`/tmp/.X11-unix/X${n}`); i++)
    await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(`/tmp/.X11-unix/X${n}`)) throw new Error(`Xvfb did not start on ${display}`);

  site = createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/login') {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        posts.push(body);
        const ok = new URLSearchParams(body).get('password') === PASSWORD;
        response.writeHead(303, {
          location: ok ? '/home' : '/login',
          ...(ok ? { 'set-cookie': `session=s-${randomBytes(4).toString('hex')}; Path=/; HttpOnly` } : {}),
        });
        response.end();
      });
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html' });
    if (request.url === '/home' && /session=s-/.test(request.headers.cookie ?? ''))
      response.end('<title>Welcome alice</title><h1>Signed in</h1>');
    else
      response.end(
        '<title>Login</title><form method="post" action="/login" style="margin:0">' +
          '<input name="password" type="password" autofocus style="box-sizing:border-box;width:100vw;height:90vh;font-size:40px">' +
          '</form>',
      );
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  loginUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}/login`;

  agentDir = await mkdtemp(join(tmpdir(), 'grexal-dev-browser-agent-'));
  await cp(FIXTURE, agentDir, { recursive: true });
  await writeFile(
    join(agentDir, 'grexal.json'),
    JSON.stringify({ connections: [{ id: 'site', mode: 'browser_login', label: 'Test site', loginUrl }] }),
  );
  await mkdir(join(agentDir, '.grexal'));
  await writeFile(join(agentDir, '.grexal', 'connections.json'), '{}\n');
});

afterAll(async () => {
  xvfb?.kill();
  site?.close();
  await removeStateDir(stateDir);
  await rm(agentDir, { recursive: true, force: true });
  await rm(tmpRoot, { recursive: true, force: true });
  await docker
    .getImage(`grexal-dev/${agentDir.split('/').pop()!.toLowerCase()}`)
    .remove({ force: true })
    .catch(() => {});
});

interface Dev {
  child: ChildProcess;
  out: () => string;
  waitFor(pattern: RegExp): Promise<void>;
  exited: Promise<number>;
}

function startDev(env: Record<string, string | undefined>, args: string[] = [], dir = agentDir): Dev {
  return startWatched([join(REPO, 'bin/grexal.mjs'), 'dev', dir, ...args], env);
}

/** `node ...argv` from the repository, its output collected and waited on. */
function startWatched(argv: string[], env: Record<string, string | undefined>): Dev {
  const child = spawn(process.execPath, argv, {
    cwd: REPO,
    env: { ...process.env, GREXAL_STATE_DIR: stateDir, TMPDIR: tmpRoot, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const feed = (chunk: Buffer) => {
    out += chunk.toString();
    for (const waiter of waiters.splice(0)) waiter();
  };
  child.stdout?.on('data', feed);
  child.stderr?.on('data', feed);
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return {
    child,
    out: () => out,
    exited,
    async waitFor(pattern) {
      while (!pattern.test(out)) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        const ended = exited.then(() => {
          throw new Error(`${argv.slice(0, 2).join(' ')} exited before ${pattern}:\n${out}`);
        });
        await Promise.race([more, ended]);
      }
    },
  };
}

/** Processes whose command line names `dir` (a browser with its profile there, say). */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir))
      found.push(`${pid} ${(await readlink(`/proc/${pid}/exe`).catch(() => '?')) as string}`);
  }
  return found;
}

/**
 * As the developer, through X: find the window by its page's title, click into the page's first
 * field (at `y` of the window's height), type each value, Tab between them, and press Enter.
 */
async function logInThroughTheWindow(
  title = '^Login',
  values: string[] = [PASSWORD],
  y: (height: number) => number = () => 400,
): Promise<void> {
  const env = { ...process.env, DISPLAY: display };
  const { stdout } = await run('xdotool', ['search', '--sync', '--onlyvisible', '--name', title], {
    env,
    timeout: 60_000,
  });
  const window = stdout.trim().split('\n')[0]!;
  await run('xdotool', ['windowfocus', '--sync', window], { env });
  const geometry = (await run('xdotool', ['getwindowgeometry', '--shell', window], { env })).stdout;
  const height = Number(/HEIGHT=(\d+)/.exec(geometry)?.[1] ?? 800);
  await run(
    'xdotool',
    ['mousemove', '--window', window, '400', String(Math.round(y(height))), 'click', '1'],
    {
      env,
    },
  );
  for (const [i, value] of values.entries()) {
    if (i > 0) await run('xdotool', ['key', 'Tab'], { env });
    await run('xdotool', ['type', '--delay', '30', value], { env });
  }
  await run('xdotool', ['key', 'Return'], { env });
}

async function expectNothingLeft(dev: Dev): Promise<void> {
  expect(await processesUnder(tmpRoot)).toEqual([]);
  expect((await readdir(tmpRoot)).filter((name) => name.startsWith('grexal-chromium-'))).toEqual([]);
  expect(await containersOfPid(dev.child.pid)).toEqual([]);
}

describe('grexal dev with the local browser', () => {
  it('runs the agent against a local Chromium window; the developer logs in there and presses Enter', async () => {
    await writeFile(join(agentDir, 'takeover.json'), '{}\n');
    const dev = startDev({ DISPLAY: display });
    try {
      await dev.waitFor(/agent: opened the login page in the browser/);
      await dev.waitFor(/log in in the browser window, then press Enter \(Ctrl-C cancels\)/);
      expect(dev.out()).toContain('the agent asks for a takeover (Test site): Log in to the test site');
      expect(dev.out()).toContain('agent: GREXAL_CDP_URL=http://127.0.0.1:9222');
      // A plain sandbox: no takeover link, no stream.
      expect(dev.out()).not.toMatch(/takeover: http/);
      // The window's Chromium runs with its profile under the CLI's TMPDIR (so the check after means something).
      expect((await processesUnder(tmpRoot)).length).toBeGreaterThan(0);
      await logInThroughTheWindow();
      for (let i = 0; i < 200 && !posts.some((p) => p.includes(PASSWORD)); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(posts.some((p) => p.includes(PASSWORD))).toBe(true);
      dev.child.stdin?.write('\n');
      expect(await dev.exited).toBe(0);
      const out = dev.out();
      expect(out).toContain('agent: takeover completed');
      // Cut while the developer had the browser, as in production: 4010, then back in.
      expect(out).toContain('agent: the old connection was closed with 4010');
      expect(out).toMatch(/agent: logged in: cookie session=s-[0-9a-f]+, page "Welcome alice"/);
      await expectNothingLeft(dev);
    } finally {
      dev.child.kill('SIGKILL');
    }
  });

  it('completes the takeover by itself when until holds, watched by the runner over CDP', async () => {
    await writeFile(join(agentDir, 'takeover.json'), JSON.stringify({ until: { cookie: 'session' } }));
    const dev = startDev({ DISPLAY: display });
    try {
      await dev.waitFor(/press Enter \(Ctrl-C cancels\)/);
      await logInThroughTheWindow();
      // No Enter: the cookie ends it.
      expect(await dev.exited).toBe(0);
      expect(dev.out()).toMatch(/takeover ended: signed in \(until\.cookie held\)/);
      expect(dev.out()).toMatch(/agent: logged in: cookie session=s-/);
      await expectNothingLeft(dev);
    } finally {
      dev.child.kill('SIGKILL');
    }
  });

  it('Ctrl-C cancels the takeover only: the agent gets takeover_cancelled and ends as it likes', async () => {
    await writeFile(join(agentDir, 'takeover.json'), '{}\n');
    const dev = startDev({ DISPLAY: display });
    try {
      await dev.waitFor(/press Enter \(Ctrl-C cancels\)/);
      dev.child.kill('SIGINT');
      expect(await dev.exited).toBe(3);
      expect(dev.out()).toContain('takeover cancelled (Ctrl-C)');
      expect(dev.out()).toContain('agent: takeover ended: takeover_cancelled');
      await expectNothingLeft(dev);
    } finally {
      dev.child.kill('SIGKILL');
    }
  });

  it('without a display, says so and names the fix before building anything', async () => {
    const dev = startDev({ DISPLAY: undefined, WAYLAND_DISPLAY: undefined });
    expect(await dev.exited).toBe(1);
    expect(dev.out()).toContain('E_BROWSER_NO_DISPLAY');
    expect(dev.out()).toContain('--browser desktop');
    expect(dev.out()).not.toMatch(/building/);
  });
});

const demoDir = join(REPO, 'examples/demo-agent');
const connectionsPath = join(demoDir, 'demo-connections.json');
// The demo page's username field takes the window's upper middle, whatever the height of
// Chromium's own toolbar (between 40 and 140 px): 12-48 % of the page below it.
const demoUsernameY = (h: number) => (140 + 0.12 * (h - 140) + 40 + 0.48 * (h - 40)) / 2;

/** The demo agent's output says it ran every channel masked, and left no demo credential. */
async function expectDemoChannelsMasked(out: string): Promise<void> {
  expect(out).toContain('OPENAI_API_KEY=*** (24 characters)');
  expect(out).toContain('github: refused with not_declared');
  const demo = JSON.parse(await readFile(connectionsPath, 'utf8'));
  for (const secret of [
    demo.openai.fields.api_key,
    demo.aws.fields.access_key,
    demo.aws.fields.secret_key,
    demo.gmail.access_token,
    demo.gmail.refresh_token,
  ])
    expect(out).not.toContain(secret);
}

describe('grexal dev on the demo agent with the local browser', () => {
  let demoSite: Awaited<ReturnType<typeof startLoginSite>>;
  beforeAll(async () => {
    // The demo's login site, on the host's loopback where the developer's window is.
    demoSite = await startLoginSite(0);
  });
  afterAll(async () => {
    await demoSite?.close();
  });

  it('opens its login site in the window; the developer logs in and presses Enter; the agent resumes logged in', async () => {
    const dev = startDev(
      { DISPLAY: display },
      [
        '--browser',
        'local',
        '--connections',
        connectionsPath,
        '--env',
        `DEMO_LOGIN_URL=${demoSite.url}/login`,
      ],
      demoDir,
    );
    try {
      await dev.waitFor(new RegExp(`demo-agent: opened the login page \\(${demoSite.url}\\) in the browser`));
      await dev.waitFor(/log in in the browser window, then press Enter \(Ctrl-C cancels\)/);
      expect(dev.out()).toContain('the agent asks for a takeover (Demo site): Log in to the demo site');
      expect(dev.out()).not.toMatch(/takeover: http/);
      expect((await processesUnder(tmpRoot)).length).toBeGreaterThan(0);
      await logInThroughTheWindow('^Demo site', ['ada', 'grexal-demo'], demoUsernameY);
      for (let i = 0; i < 200 && !demoSite.loggedIn().includes('ada'); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(demoSite.loggedIn()).toEqual(['ada']);
      dev.child.stdin?.write('\n');
      const code = await dev.exited;
      const out = dev.out();
      expect(code, out).toBe(0);
      // Every channel reported, masked, before the browser part.
      await expectDemoChannelsMasked(out);
      // The agent's own word, from the site through the browser: the session is there.
      expect(out).toContain('demo-agent: logged in as ada: the session lives in the browser');
      // The window went with the run, as it should: no warning that it closed under the agent.
      expect(out).not.toContain('the local browser closed');
      await expectNothingLeft(dev);
    } finally {
      dev.child.kill('SIGKILL');
    }
  });

  it('is what `npm run demo -- --browser local` runs: the demo serves the site on this machine', async () => {
    // examples/demo.ts after setup, as scripts/demo.sh execs it.
    const demo = startWatched(['scripts/run-ts.mjs', 'examples/demo.ts', '--browser', 'local'], {
      DISPLAY: display,
    });
    try {
      await demo.waitFor(
        /demo: serving the demo login site on http:\/\/127\.0\.0\.1:\d+ for the local browser/,
      );
      await demo.waitFor(/log in in the browser window, then press Enter \(Ctrl-C cancels\)/);
      await demo.waitFor(/demo-agent: opened the login page \(http:\/\/127\.0\.0\.1:\d+\) in the browser/);
      await logInThroughTheWindow('^Demo site', ['ada', 'grexal-demo'], demoUsernameY);
      // The demo's own site (not this test's) says when the login went through.
      await demo.waitFor(/demo: the demo site logged ada in: press Enter/);
      demo.child.stdin?.write('\n');
      const code = await demo.exited;
      const out = demo.out();
      expect(code, out).toBe(0);
      await expectDemoChannelsMasked(out);
      expect(out).toContain('demo-agent: logged in as ada: the session lives in the browser');
      expect(out).toContain('demo: done');
      await expectNothingLeft(demo);
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('refuses --auto with --browser local, naming why, before anything starts', async () => {
    const demo = startWatched(['scripts/run-ts.mjs', 'examples/demo.ts', '--browser', 'local', '--auto'], {
      DISPLAY: display,
    });
    expect(await demo.exited).toBe(2);
    expect(demo.out()).toContain('with --browser local you are the user');
    expect(demo.out()).not.toMatch(/serving|building|running/);
  });
});
