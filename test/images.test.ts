/** The images against the real engine: built and labelled, skipped when unchanged, and what is inside. */
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildImagesResult,
  buildImages,
  IMAGE_NAMES,
  IMAGE_TAGS,
  LABEL_CONTEXT_HASH,
  LABEL_IMAGE,
} from '../runner/images/index.ts';
import { DockerRuntime } from '../runner/runtime/index.ts';
import { docker } from './helpers.ts';

const log: string[] = [];
let first: BuildImagesResult;
let second: BuildImagesResult;

beforeAll(async () => {
  const runtime = await DockerRuntime.connect();
  const options = { log: (line: string) => log.push(line) };
  first = await buildImages(runtime, options);
  second = await buildImages(runtime, options);
}, 1_800_000);

/** Runs `cmd` in `image` (entrypoint replaced), as the image's user; removes the container. */
async function runIn(image: string, cmd: string[]): Promise<{ code: number; output: string }> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: cmd,
    Labels: { 'grexal.scratch': '1' },
    HostConfig: { NetworkMode: 'none' },
  });
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    let output = '';
    const sink = new PassThrough().on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    docker.modem.demuxStream(stream, sink, sink);
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    await new Promise((resolve) => setImmediate(resolve));
    return { code: StatusCode, output };
  } catch (error) {
    process.stderr.write(`images test: container ${container.id} failed\n`);
    throw error;
  } finally {
    await container.remove({ force: true });
  }
}

describe('grexal images build', () => {
  it('leaves all three images, each labelled with what it was built from', async () => {
    expect(first.images.map((i) => i.tag)).toEqual(IMAGE_NAMES.map((n) => IMAGE_TAGS[n]));
    for (const built of first.images) {
      const inspect = await docker.getImage(built.tag).inspect();
      expect(inspect.Id).toBe(built.id);
      expect(inspect.Config.Labels?.[LABEL_CONTEXT_HASH]).toBe(built.contextHash);
      expect(inspect.Config.Labels?.[LABEL_IMAGE]).toBe(built.name);
    }
  });

  it('skips every image when nothing changed', () => {
    expect(second.images.map((i) => [i.tag, i.action])).toEqual(
      IMAGE_NAMES.map((n) => [IMAGE_TAGS[n], 'skipped']),
    );
    expect(second.images.map((i) => i.id)).toEqual(first.images.map((i) => i.id));
    expect(log.some((l) => /^\[agent \+[\d.]+s\] skipped grexal\/agent/.test(l))).toBe(true);
  });
});

describe('grexal/agent', () => {
  it("runs as uid 1000 with python3, tini and the host's node, startup snapshot included", async () => {
    const { code, output } = await runIn(IMAGE_TAGS.agent, [
      'sh',
      '-c',
      'id -u; id -g; echo $HOME; command -v node; node -p "process.version + \' \' + process.config.variables.node_use_node_snapshot"; python3 --version; test -x /usr/bin/tini && echo tini',
    ]);
    expect(code).toBe(0);
    const [uid, gid, home, node, version, python, tini] = output.split('\n');
    expect([uid, gid, home, node, version, tini]).toEqual([
      '1000',
      '1000',
      '/home/agent',
      '/usr/local/bin/node',
      `${process.version} true`,
      'tini',
    ]);
    expect(python).toMatch(/^Python 3\.\d+\.\d+$/);
  });

  it('holds the supervisor, the desktop helper, the JS client and the importable Python client', async () => {
    const { code, output } = await runIn(IMAGE_TAGS.agent, [
      'sh',
      '-c',
      'test -f /opt/grexal/supervisor.py && test -f /opt/grexal/desktop.mjs && test -f /opt/grexal/ctx.mjs && python3 -c "import grexal; print(\'py-ok\')"',
    ]);
    expect(output).toContain('py-ok');
    expect(code).toBe(0);
  });

  it('starts tini then the Python supervisor', async () => {
    const inspect = await docker.getImage(IMAGE_TAGS.agent).inspect();
    expect(inspect.Config.Entrypoint).toEqual([
      '/usr/bin/tini',
      '-g',
      '--',
      'python3',
      '-I',
      '-S',
      '/opt/grexal/supervisor.py',
    ]);
    expect(inspect.Config.User).toBe('agent');
  });
});

describe('grexal/desktop', () => {
  it('has Xtigervnc (and neither Xvfb nor x11vnc), a window manager and a Chromium that runs', async () => {
    const { code, output } = await runIn(IMAGE_TAGS.desktop, [
      'sh',
      '-c',
      '! command -v Xvfb >/dev/null && ! command -v x11vnc >/dev/null && command -v Xtigervnc matchbox-window-manager >/dev/null && chromium --version',
    ]);
    expect(output).toMatch(/^Chromium \d+\./m);
    expect(code).toBe(0);
  });

  it('lets agents load playwright-core with require and import, and drive Chromium', async () => {
    const script = [
      "const cjs = require('playwright-core');",
      "import('playwright-core').then(async (esm) => {",
      "  const browser = await esm.chromium.launch({ executablePath: '/usr/bin/chromium' });",
      '  const page = await browser.newPage();',
      "  await page.setContent('<title>grexal</title>');",
      '  console.log(typeof cjs.chromium.launch, await page.title());',
      '  await browser.close();',
      '});',
    ].join('\n');
    const { code, output } = await runIn(IMAGE_TAGS.desktop, ['node', '-e', script]);
    expect(output).toContain('function grexal');
    expect(code).toBe(0);
  });
});
