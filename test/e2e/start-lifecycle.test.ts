/**
 * `npm start` as a process manager would drive it (issue 15 items 2–4, issue 13 item 4): --help and usage errors,
 * a model that cannot load, SIGTERM, a child that dies. Every start runs through npm with its caches and state in
 * temporary folders and random ports.
 */
import { copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, tempDir } from '../node/helpers/models.ts';
import {
  alive,
  devJson,
  eventually,
  listening,
  npmStart,
  processesMentioning,
  waitRunning,
  type NpmStart,
} from './helpers/start-process.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const running: NpmStart[] = [];
afterAll(async () => {
  // a failed test must not leave a system behind
  for (const s of running) {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
    try {
      const { pids } = devJson(s);
      for (const pid of [pids.backend, pids.wrangler]) process.kill(-pid, 'SIGKILL');
    } catch {
      // nothing recorded, or already gone
    }
  }
  cleanupTempDirs();
});

const start = async (args: string[], cache: string) => {
  const s = await npmStart(args, { cache, state: join(tempDir('realign-start-'), 'state') });
  running.push(s);
  return s;
};

/** Graph folders in the cache with the modification time of each one's model.onnx. */
const graphs = (cache: string) =>
  Object.fromEntries(
    readdirSync(join(cache, 'graphs')).map((d) => [d, statSync(join(cache, 'graphs', d, 'model.onnx')).mtimeMs]),
  );

describe('npm start', () => {
  it('--help lists the options with their defaults and exits 0; a usage error exits 2 without a stack trace', async () => {
    const cache = tempDir('realign-cache-');
    const help = await start(['--help'], cache);
    const h = await help.exited;
    expect(h.code, help.stderr()).toBe(0);
    expect(help.stdout()).toMatch(/--model <dir>/);
    expect(help.stdout()).toMatch(/--port <port>[\s\S]*default:\s+8787/);
    expect(help.stdout()).toMatch(/--verbose/);
    expect(help.stderr()).not.toMatch(/\n\s+at /);
    const bad = await start(['--lambda', 'lots'], cache);
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr()).toMatch(/--lambda/);
    expect(bad.stderr()).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('a model that cannot load (no tokenizer.json) ends npm start within seconds with the backend message, leaving nothing listening', async () => {
    const model = tempDir('realign-notok-');
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors'])
      copyFileSync(join(ROOT, 'models/toy-inra', f), join(model, f));
    const s = await start(['--model', model, '--verbose'], tempDir('realign-cache-'));
    const ended = await Promise.race([s.exited, new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);
    expect(ended, `npm start still running after 60 s:\n${s.stderr()}`).not.toBeNull();
    expect(ended!.code).toBe(1);
    expect(s.stderr()).toMatch(/could not load model "realign-demo".*tokenizer\.json/);
    expect(s.stderr()).toMatch(/last log lines/);
    // --verbose: the backend's own log lines here too; without it they are in the log file named at the start
    expect(s.stderr()).toMatch(/"msg":"model failed to load"/);
    expect(s.stderr()).toContain(`logs in ${join(s.stateDir, 'logs')}`);
    const backendLog = readdirSync(join(s.stateDir, 'logs')).find((f) => f.startsWith('backend-'))!;
    expect(readFileSync(join(s.stateDir, 'logs', backendLog), 'utf8')).toMatch(/"msg":"model failed to load"/);
    expect(await listening(s.backendPort)).toBe(false);
    expect(await listening(s.edgePort)).toBe(false);
  }, 90_000);

  it('SIGHUP in the middle of the start (backend up, edge starting) stops npm start and every child it had started', async () => {
    const s = await start([], tempDir('realign-cache-'));
    const deadline = Date.now() + 120_000;
    while (!/backend: ready on/.test(s.stderr()) && Date.now() < deadline && s.child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(s.stderr()).toMatch(/backend: ready on/);
    expect(processesMentioning(s.stateDir).length, 'the backend runs').toBeGreaterThan(0);
    // a closed terminal hangs up the job's whole process group (npm does not forward SIGHUP itself)
    process.kill(-s.child.pid!, 'SIGHUP');
    const ended = await Promise.race([s.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(ended, `npm start ignored SIGHUP:\n${s.stderr()}`).not.toBeNull();
    expect(
      await eventually(() => processesMentioning(s.stateDir).length === 0, 5000),
      `left running: ${processesMentioning(s.stateDir)}`,
    ).toBe(true);
    expect(await listening(s.backendPort)).toBe(false);
    expect(await listening(s.edgePort)).toBe(false);
  }, 180_000);

  it('SIGTERM stops the backend and wrangler; the next start reuses the graphs; a child that dies ends npm start with its log', async () => {
    const cache = tempDir('realign-cache-');
    const first = await start([], cache);
    await waitRunning(first);
    const built = graphs(cache);
    expect(Object.keys(built).length).toBeGreaterThan(0);
    const one = devJson(first).pids;
    expect(alive(one.backend) && alive(one.wrangler)).toBe(true);
    first.child.kill('SIGTERM');
    const stopped = await Promise.race([first.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(stopped, `npm start ignored SIGTERM:\n${first.stderr()}`).not.toBeNull();
    expect(await eventually(() => !alive(one.backend) && !alive(one.wrangler), 5000), 'a child outlived npm start').toBe(true);
    expect(await listening(first.backendPort)).toBe(false);
    expect(await listening(first.edgePort)).toBe(false);

    const second = await start([], cache);
    await waitRunning(second);
    expect(graphs(cache), 'the second start rebuilt the graphs').toEqual(built);
    const two = devJson(second).pids;
    // the edge dies on its own (as wrangler does on a truncated body): npm start says so and stops the backend
    process.kill(-two.wrangler, 'SIGKILL');
    const ended = await Promise.race([second.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(ended, `npm start kept running without its edge:\n${second.stderr()}`).not.toBeNull();
    expect(ended!.code).not.toBe(0);
    expect(second.stderr()).toMatch(
      /wrangler dev exited on its own \(SIGKILL\); its last log lines \(all of them in .*wrangler\.log\)/,
    );
    expect(await eventually(() => !alive(two.backend), 15_000), 'the backend outlived npm start').toBe(true);
    expect(await listening(second.backendPort)).toBe(false);
  }, 300_000);
});
