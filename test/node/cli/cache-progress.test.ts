/**
 * Long work is visible and caches go where caches go (issue 15 item 6): graphs under the user's cache directory
 * (REALIGN_CACHE, XDG_CACHE_HOME, ~/.cache), never the current folder; a build reported line by line when stderr is
 * not a terminal; the folder named once; the tokenizer checked before any build.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { graphCacheDir, realignCacheDir } from '../../../gpu-backend/src/cache-dir.ts';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { defaultGraphCache } from '../../../gpu-backend/src/graph/build.ts';
import { progressMode, ProgressBar } from '../../../gpu-backend/src/cli/progress.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { cli } from './run-cli.ts';

afterAll(cleanupTempDirs);

describe('the cache directory', () => {
  it('is $REALIGN_CACHE, else $XDG_CACHE_HOME/realign, else ~/.cache/realign; graphs/ under it unless REALIGN_GRAPH_CACHE names one', () => {
    expect(realignCacheDir({ REALIGN_CACHE: '/c/r', XDG_CACHE_HOME: '/x' })).toBe('/c/r');
    expect(realignCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/realign');
    expect(realignCacheDir({})).toBe(join(homedir(), '.cache', 'realign'));
    // a relative XDG_CACHE_HOME is ignored, as the XDG spec says
    expect(realignCacheDir({ XDG_CACHE_HOME: 'rel' })).toBe(join(homedir(), '.cache', 'realign'));
    expect(graphCacheDir({ REALIGN_CACHE: '/c/r' })).toBe('/c/r/graphs');
    expect(graphCacheDir({ REALIGN_CACHE: '/c/r', REALIGN_GRAPH_CACHE: '/g' })).toBe('/g');
    expect(graphCacheDir({})).toBe(join(homedir(), '.cache', 'realign', 'graphs'));
  });

  it("is the engine's and the server's default (defaultGraphCache), not the current folder", () => {
    const saved = { ...process.env };
    try {
      delete process.env.REALIGN_GRAPH_CACHE;
      process.env.REALIGN_CACHE = '/somewhere/realign';
      expect(defaultGraphCache()).toBe('/somewhere/realign/graphs');
    } finally {
      process.env.REALIGN_CACHE = saved.REALIGN_CACHE;
      process.env.REALIGN_GRAPH_CACHE = saved.REALIGN_GRAPH_CACHE;
      if (saved.REALIGN_CACHE === undefined) delete process.env.REALIGN_CACHE;
      if (saved.REALIGN_GRAPH_CACHE === undefined) delete process.env.REALIGN_GRAPH_CACHE;
    }
  });
});

describe('progress', () => {
  it('is a bar on a terminal and plain lines otherwise; REALIGN_PROGRESS chooses', () => {
    expect(progressMode({}, true)).toBe('bar');
    expect(progressMode({}, false)).toBe('lines');
    expect(progressMode({ REALIGN_PROGRESS: 'lines' }, true)).toBe('lines');
    expect(progressMode({ REALIGN_PROGRESS: 'bar' }, false)).toBe('bar');
    expect(progressMode({ REALIGN_PROGRESS: 'off' }, true)).toBe('off');
  });

  it('in lines mode prints one line per quarter and a last line with the time, no carriage returns', () => {
    const out: string[] = [];
    const bar = new ProgressBar('building graph', 'lines', (s) => out.push(s));
    for (let i = 0; i <= 100; i++) bar.update(i, 100);
    expect(out.map((l) => l.replace(/\(\d+\.\d s\)|in \d+\.\d s/, '(t)'))).toEqual([
      'realign: building graph: 0% (t)\n',
      'realign: building graph: 25% (t)\n',
      'realign: building graph: 50% (t)\n',
      'realign: building graph: 75% (t)\n',
      'realign: building graph: done (t)\n',
    ]);
    expect(out.join('')).not.toContain('\r');
  });
});

describe('realign logits and generate: graphs', () => {
  const seed = testSeed();
  const work = tempDir();
  const cwd = tempDir();
  const cache = join(work, 'cache');
  const model = join(work, 'model');
  initModel(model, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32' });

  it(`build into the user cache with one line per stage, say the folder once, and reuse it (seed ${seed})`, async () => {
    const first = await cli(['logits', '--model', model, '--prompt', 'hello', '--device', 'cpu'], { cwd, cache });
    expect(first.code, first.stderr).toBe(0);
    const building = first.stderr.split('\n').filter((l) => l.includes('building graph single'));
    expect(building[0]).toContain(`in ${join(cache, 'graphs')}`);
    expect(first.stderr).toMatch(/building graph single \(float32, context \d+\): 50% \(\d+\.\d s\)/);
    expect(first.stderr).toMatch(/building graph single \(float32, context \d+\): done in \d+\.\d s/);
    expect(first.stderr.split(join(cache, 'graphs')).length - 1, 'the cache folder is named once').toBe(1);
    expect(first.stderr).not.toContain('\r');
    expect(readdirSync(join(cache, 'graphs')).filter((d) => d.startsWith('single-float32-'))).toHaveLength(1);
    expect(existsSync(join(cwd, '.realign')), 'nothing is written into the current folder').toBe(false);

    const second = await cli(['generate', '--model', model, '--prompt', 'hello', '--max-tokens', '2', '--device', 'cpu'], {
      cwd,
      cache,
    });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/graph single \(float32, context \d+\): cached in /);
    expect(second.stderr).not.toMatch(/building/);
    expect(readdirSync(join(cache, 'graphs'))).toHaveLength(1);
  }, 120_000);

  it('logits checks for the tokenizer before building anything', async () => {
    const bare = join(work, 'bare');
    initModel(bare, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32' });
    const emptyCache = join(work, 'cache-2');
    const dir = tempDir();
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(bare, f), join(dir, f));
    const r = await cli(['logits', '--model', dir, '--prompt', 'hello', '--device', 'cpu'], { cwd, cache: emptyCache });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has no tokenizer\.json/);
    expect(existsSync(join(emptyCache, 'graphs')), 'a graph was built for a model that cannot run').toBe(false);
  }, 60_000);
});

describe('realign serve', () => {
  it('logs the graph cache folder once at start: the user cache when models.json names none', async () => {
    const work = tempDir();
    const model = join(work, 'model');
    initModel(model, { arch: 'qwen2', preset: 'tiny', seed: 1, dtype: 'F32' });
    const config = join(work, 'models.json');
    writeFileSync(
      config,
      JSON.stringify({ models: [{ id: 'm', mode: 'single', model, device: 'cpu' }], auth: { allow_unauthenticated: true } }),
    );
    const cache = join(work, 'cache');
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, '../../../bin/realign.js'), 'serve', '--config', config, '--port', '0'],
      {
        cwd: tempDir(),
        env: { ...process.env, REALIGN_GRAPH_CACHE: '', REALIGN_CACHE: cache, REALIGN_NO_MALLOC_TUNING: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes('"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const lines = out.split('\n').filter((l) => l.includes('"graph cache"'));
      expect(lines, out).toHaveLength(1);
      expect(JSON.parse(lines[0]).graphCache).toBe(join(cache, 'graphs'));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
    }
  }, 90_000);
});
