/**
 * A runner SIGKILLed during an open takeover, and a new one on the same state dir: the old
 * sandbox id is 410 E_SANDBOX_GONE on every route, the takeover link's page says the session ended
 * when the runner restarted (410, and so do its stream and actions), a random id is still 404,
 * and the new runner reaps the dead one's container.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RunnerClient } from '../runner/index.ts';
import {
  type CliRun,
  eventually,
  newStateDir,
  removeStateDir,
  sandboxContainers,
  sandboxDirs,
  startCli,
} from './helpers.ts';

const TOKEN = 'restart-test-token-0b7e';
let stateDir: string;
const runs: CliRun[] = [];

beforeAll(async () => {
  stateDir = await newStateDir();
});
afterAll(async () => {
  for (const run of runs)
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
  await Promise.all(runs.map((run) => run.exited));
  await removeStateDir(stateDir);
});

async function startServe(): Promise<{ run: CliRun; url: string }> {
  const run = startCli(['serve', '--port', '0'], {
    GREXAL_STATE_DIR: stateDir,
    GREXAL_RUNNER_TOKEN: TOKEN,
    GREXAL_LOG_LEVEL: 'warn',
  });
  runs.push(run);
  const [, url] = await run.waitFor(/serving on (http:\/\/\S+)/, 'stderr');
  return { run, url: url! };
}

const AGENT = `
  import { ctx } from '/opt/grexal/ctx.mjs';
  await ctx.requestTakeover({ connectionId: 'site', reason: 'Log in, please.', timeoutMs: 120000 });
`;

function streamRefusal(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => reject(new Error('the stream was opened')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
  });
}

describe('a runner restart on the same state dir', () => {
  it('answers the old ids with 410 and the old takeover page says the runner restarted', async () => {
    const first = await startServe();
    const client = new RunnerClient({ baseUrl: first.url, token: TOKEN });
    const { id } = await client.create({
      image: 'grexal/desktop',
      desktop: true,
      command: ['node', '--input-type=module', '-e', AGENT],
      manifest: { connections: [{ id: 'site', mode: 'browser_login', label: 'The site' }] },
      credentials: {},
    });
    try {
      let link: URL | undefined;
      for await (const event of client.events(id)) {
        if (event.type === 'takeover.requested') {
          link = new URL((event as { url: string }).url);
          break;
        }
        if (event.type === 'exit')
          throw new Error(`exited before a takeover: ${JSON.stringify(event)}\n${first.run.stderr}`);
      }
      const takeoverId = link!.pathname.split('/').pop()!;
      expect((await fetch(link!)).status).toBe(200);

      first.run.child.kill('SIGKILL');
      await first.run.exited;
      const second = await startServe();
      const api = (path: string, method = 'GET') =>
        fetch(`${second.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });

      for (const [path, method] of [
        [`/v1/sandboxes/${id}`, 'GET'],
        [`/v1/sandboxes/${id}/events`, 'GET'],
        [`/v1/sandboxes/${id}`, 'DELETE'],
      ] as const) {
        const res = await api(path, method);
        expect([method, path, res.status, (await res.json()).error.code]).toEqual([
          method,
          path,
          410,
          'E_SANDBOX_GONE',
        ]);
      }
      const page = await fetch(`${second.url}${link!.pathname}${link!.search}`);
      expect(page.status).toBe(410);
      expect(await page.text()).toContain('This session ended when the runner restarted');
      const stream = `${second.url.replace('http', 'ws')}/v1/takeovers/${takeoverId}/stream${link!.search}`;
      expect(await streamRefusal(stream)).toBe(410);
      for (const verb of ['complete', 'cancel']) {
        const res = await fetch(`${second.url}/v1/takeovers/${takeoverId}/${verb}${link!.search}`, {
          method: 'POST',
        });
        expect([verb, res.status, (await res.json()).error.code]).toEqual([verb, 410, 'E_TAKEOVER_ENDED']);
      }

      const random = await api(`/v1/sandboxes/sbx_${'0'.repeat(40)}`);
      expect([random.status, (await random.json()).error.code]).toEqual([404, 'E_SANDBOX_NOT_FOUND']);
      expect((await fetch(`${second.url}/takeover/tk_${'A'.repeat(30)}?token=x`)).status).toBe(404);

      // The new runner removes what the killed one left.
      await eventually(async () => (await sandboxContainers(id)).length === 0, `${id} reaped`);
      expect(await sandboxDirs(stateDir)).toEqual([]);
    } catch (error) {
      console.error(`sandbox of this test: ${id}`);
      throw error;
    } finally {
      for (const c of await sandboxContainers(id)) {
        await (await import('./helpers.ts')).docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
      }
    }
  });
});
