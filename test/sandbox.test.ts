/** `grexal run` and the library against the real engine: output, exit codes, and nothing left. */
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner } from '../runner/index.ts';
import {
  containersCreatedByPid,
  containersOfPid,
  docker,
  newStateDir,
  removeStateDir,
  runCli,
  sandboxContainers,
  sandboxDirs,
  startCli,
} from './helpers.ts';

let stateDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  stateDir = await newStateDir();
  env = { GREXAL_STATE_DIR: stateDir };
});
afterAll(async () => {
  await removeStateDir(stateDir);
});

describe('grexal run', () => {
  it('runs as uid 1000, exits with the command code, leaves nothing', async () => {
    const run = startCli(['run', '--image', 'grexal/agent', '--', 'sh', '-c', 'id -u; exit 3'], env);
    const code = await run.exited;
    expect(run.stdout).toBe('1000\n');
    expect(code).toBe(3);
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('streams stdout and stderr as they come', async () => {
    const script =
      'echo first; echo oops >&2; while [ ! -e /run/grexal/go ]; do sleep 0.05; done; echo second';
    const run = startCli(['run', '--', 'sh', '-c', script], env);
    await run.waitFor(/first\n/, 'stdout');
    await run.waitFor(/oops\n/, 'stderr');
    // The agent is still waiting: the first line reached us before the command finished.
    expect(run.stdout).toBe('first\n');
    const [dir] = await sandboxDirs(stateDir);
    await writeFile(join(dir!, 'go'), '');
    expect(await run.exited).toBe(0);
    expect(run.stdout).toBe('first\nsecond\n');
  });

  it('exits 127 naming a command missing from the image', async () => {
    const { code, stderr } = await runCli(['run', '--', 'no-such-tool', '--flag'], env);
    expect(code).toBe(127);
    expect(stderr).toContain('command not found: no-such-tool');
  });

  it('refuses invalid limits before creating anything', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const run = startCli(['run', '--memory=-1', '--cpus', '0', '--timeout', 'soon', '--', 'true'], env);
    const code = await run.exited;
    expect(code).toBe(1);
    expect(run.stderr).toContain('--memory');
    expect(run.stderr).toContain('--cpus');
    expect(run.stderr).toContain('--timeout');
    expect(run.stderr).toContain('nothing was created');
    expect(await containersCreatedByPid(run.child.pid, since)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('names an unknown image and the fix', async () => {
    const { code, stderr } = await runCli(['run', '--image', 'grexal/nope:missing', '--', 'true'], env);
    expect(code).toBe(1);
    expect(stderr).toContain("'grexal/nope:missing'");
    expect(stderr).toContain('grexal images build');
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('without an engine, names every endpoint tried and the fix, and leaves nothing behind', async () => {
    // `grexal run` does not wait for the engine's ping before its create: the error must not change.
    // A file that is not a socket: connecting to it is refused, as to a socket nobody listens on.
    const socket = join(tmpdir(), `grexal-test-no-engine-${process.pid}.sock`);
    await writeFile(socket, '');
    const { code, stderr } = await runCli(['run', '--', 'true'], { ...env, DOCKER_HOST: `unix://${socket}` });
    await rm(socket, { force: true });
    expect(code).toBe(1);
    expect(stderr).toBe(
      `grexal: No Docker engine found (tried DOCKER_HOST (unix://${socket}): connection refused (is dockerd running?)). Run \`grexal doctor --fix\` or start Docker. [E_ENGINE_UNREACHABLE]\n`,
    );
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('destroys the sandbox on Ctrl-C', async () => {
    const run = startCli(['run', '--', 'sh', '-c', 'echo up; sleep 300'], env);
    await run.waitFor(/up\n/);
    expect(await containersOfPid(run.child.pid)).toHaveLength(1);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('finishes the cleanup when Ctrl-C comes twice', async () => {
    const run = startCli(['run', '--', 'sh', '-c', 'echo up; sleep 300'], env);
    await run.waitFor(/up\n/);
    run.child.kill('SIGINT');
    await run.waitFor(/destroying the sandbox/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr).toContain('still cleaning up');
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('destroys the sandbox on timeout', async () => {
    const run = startCli(['run', '--timeout', '2s', '--', 'sleep', '300'], env);
    expect(await run.exited).toBe(124);
    expect(run.stderr).toContain('timed out');
    expect(await containersOfPid(run.child.pid)).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('reaps what a killed runner left behind on the next start', async () => {
    const run = startCli(['run', '--', 'sh', '-c', 'echo up; sleep 300'], env);
    await run.waitFor(/up\n/);
    const [left] = await containersOfPid(run.child.pid);
    expect(left).toBeDefined();
    run.child.kill('SIGKILL');
    await run.exited;
    expect(await sandboxDirs(stateDir)).toHaveLength(1);
    const runner = await Runner.start({ stateDir });
    expect(await runner.reaped).toContain(left!.Labels['grexal.sandbox']);
    await runner.close();
    expect(await sandboxContainers(left!.Labels['grexal.sandbox'])).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });
});

describe('the hardened sandbox', () => {
  let runner: Runner;
  beforeAll(async () => {
    runner = await Runner.start({ stateDir });
  });
  afterAll(async () => {
    await runner.close();
  });

  async function runInside(script: string, options: Record<string, unknown> = {}) {
    const sandbox = await runner.create({ image: 'grexal/agent', command: ['sh', '-c', script], ...options });
    let output = '';
    sandbox.onEvent((e) => {
      if (e.type === 'log') output += e.text;
    });
    await sandbox.start();
    const exit = await sandbox.exited;
    return { output, exit, sandbox };
  }

  it('leaves nothing of an ended agent running while its container waits for another run to start', async () => {
    // A desktop run starting (its display and browser first) holds the ended run's exit (StartsFirst).
    const starting = await runner.create({
      image: 'grexal/desktop',
      desktop: true,
      command: ['sh', '-c', 'sleep 1; echo started'],
    });
    const startingDone = starting.start().then(() => starting.exited);
    // The child escapes the agent's process group; held with the container, it would print (it
    // did before the supervisor killed such leftovers: checked).
    const { output, exit } = await runInside('setsid sh -c "sleep 0.3; echo late" & sleep 0.1; echo early');
    expect(exit).toMatchObject({ exitCode: 0, reason: 'exited' });
    expect(output).toBe('early\n');
    expect((await startingDone).exitCode).toBe(0);
  });

  it('is configured as promised (read back from docker inspect)', async () => {
    const sandbox = await runner.create({
      image: 'grexal/agent',
      command: ['sleep', '300'],
      limits: { memoryBytes: 256 * 1024 ** 2, cpus: 0.5, pidsLimit: 64 },
    });
    await sandbox.start();
    try {
      const [info] = await sandboxContainers(sandbox.id);
      const inspect = await docker.getContainer(info!.Id).inspect();
      const host = inspect.HostConfig;
      expect(inspect.Config.User).toBe('1000:1000');
      // Docker's own stop waits past any run's grace, which the supervisor applies.
      expect((inspect.Config as { StopTimeout?: number }).StopTimeout).toBe(65);
      expect(inspect.Config.Labels).toMatchObject({
        'grexal.sandbox': sandbox.id,
        'grexal.runner': runner.runtime.instanceId,
      });
      expect(host.CapDrop).toEqual(['ALL']);
      expect(host.CapAdd ?? []).toEqual([]);
      expect(host.SecurityOpt).toEqual(['no-new-privileges']);
      expect(host.ReadonlyRootfs).toBe(true);
      expect(host.Privileged).toBe(false);
      expect(host.Memory).toBe(256 * 1024 ** 2);
      expect(host.NanoCpus).toBe(5e8);
      expect(host.PidsLimit).toBe(64);
      expect(host.Tmpfs?.['/tmp/grexal']).toMatch(/^rw,nodev,nosuid,noexec,mode=0700,uid=1000,gid=1000/);
      expect(host.Tmpfs?.['/tmp']).toContain('nosuid');
      expect(host.Tmpfs?.['/home/agent']).toContain('uid=1000');
      expect(host.PortBindings ?? {}).toEqual({});
      expect(host.PublishAllPorts).toBe(false);
      expect(host.LogConfig?.Type).toBe('none');
      expect(inspect.Mounts.map((m) => [m.Type, m.Destination])).toEqual([['bind', '/run/grexal']]);
      expect(JSON.stringify(inspect)).not.toContain('docker.sock');
      const [dir] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(sandbox.id));
      expect(inspect.Mounts[0]?.Source).toBe(dir);
    } finally {
      await sandbox.destroy();
    }
    expect(await sandboxContainers(sandbox.id)).toEqual([]);
  });

  it('keeps the root filesystem read-only and privileges dropped, with no Docker socket', async () => {
    const { output, exit } = await runInside(
      [
        'touch /etc/owned 2>/dev/null && echo rootfs-writable',
        'touch /usr/bin/owned 2>/dev/null && echo usr-writable',
        'grep -E "^(NoNewPrivs|CapEff|CapPrm|CapBnd)" /proc/self/status',
        'ls /var/run/docker.sock /run/docker.sock 2>/dev/null && echo docker-socket',
        'find / -xdev -name "docker.sock" 2>/dev/null',
        'touch /tmp/ok && echo tmp-writable',
        'touch /home/agent/ok && echo home-writable',
        'stat -c "%a %u %g" /tmp/grexal',
        'grep " /tmp/grexal " /proc/mounts',
      ].join('; '),
    );
    expect(exit.exitCode).toBe(0);
    expect(output).not.toContain('rootfs-writable');
    expect(output).not.toContain('usr-writable');
    expect(output).not.toContain('docker-socket');
    expect(output).not.toContain('docker.sock');
    expect(output).toMatch(/NoNewPrivs:\s+1/);
    expect(output).toMatch(/CapEff:\s+0000000000000000/);
    expect(output).toMatch(/CapBnd:\s+0000000000000000/);
    expect(output).toContain('tmp-writable');
    expect(output).toContain('home-writable');
    expect(output).toContain('700 1000 1000');
    expect(output).toMatch(/tmpfs \/tmp\/grexal tmpfs rw,nosuid,nodev,noexec/);
  });

  it('cannot gain privileges through a setuid binary', async () => {
    // su is setuid root in Debian; with no-new-privileges it cannot switch users.
    const { output } = await runInside('su -c id root </dev/null 2>&1; echo "su=$?"; id -u');
    expect(output).toMatch(/su=[1-9]/);
    expect(output.trim().endsWith('1000')).toBe(true);
  });

  it('enforces the process limit', async () => {
    const forkUntilRefused = [
      'import os, time',
      'n = 0',
      'for _ in range(100):',
      '    try:',
      '        if os.fork() == 0:',
      '            time.sleep(30)',
      '            os._exit(0)',
      '        n += 1',
      '    except OSError:',
      '        break',
      'print("started=%d" % n)',
    ].join('\n');
    const { output } = await runInside(`python3 -c '${forkUntilRefused}'`, { limits: { pidsLimit: 32 } });
    const started = Number(/started=(\d+)/.exec(output)?.[1]);
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(32);
  });

  it('does not put the runner or its instance in reach of the agent', async () => {
    const { output } = await runInside('ls -A /run/grexal; cat /proc/1/cmdline | tr "\\0" " "');
    expect(output).toContain('ctx.sock');
    expect(output).toContain('tini');
  });
});
