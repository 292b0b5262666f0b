/**
 * `realign build-graph --model org/name` as a user runs it: the id is downloaded from a stand-in hub (HF_ENDPOINT)
 * into HF_HUB_CACHE with line progress on stderr, then used from the cache alone (HF_HUB_OFFLINE=1); `--revision`
 * picks a tag; a model the offline cache lacks ends the command with a message naming the id and the cache folder;
 * --revision with a folder is a usage error; `realign serve` takes an id (and revision) from models.json.
 */
import { execFile, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModelSource } from '../../../gpu-backend/src/checkpoint/hub/resolve-model.ts';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { filesOf, StandInHub } from './stand-in-hub.ts';

const BIN = join(import.meta.dirname, '../../../bin/realign.js');
let hub: StandInHub;
let cache: string;
let tagged: string;

/** `realign <args>` in a fresh folder with the hub settings of this test; never rejects. */
async function realign(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cwd = tempDir();
  const hf = {
    HF_ENDPOINT: hub.url,
    HF_HUB_CACHE: cache,
    HF_TOKEN: '',
    HF_TOKEN_PATH: join(cwd, 'no-token'),
    HF_HUB_OFFLINE: '',
    REALIGN_PROGRESS: 'lines',
  };
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, REALIGN_GRAPH_CACHE: join(cwd, 'graphs'), ...hf, ...env },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  const dir = join(tempDir(), 'tiny');
  initModel(dir, { arch: 'llama', preset: 'tiny', seed: testSeed(), dtype: 'F32' });
  hub = await new StandInHub().start();
  tagged = hub.commit('test-org/cli-tiny', filesOf(dir), { ref: 'v1' });
  hub.commit('test-org/cli-tiny', new Map([...filesOf(dir), ['README.md', Buffer.from('# later\n')]]));
  cache = tempDir('realign-hf-cache-');
});
afterAll(async () => {
  await hub.stop();
  cleanupTempDirs();
});

describe('realign with a Hugging Face model id', () => {
  it('downloads the id into the hub cache with progress, then builds from the cache alone when offline', async () => {
    const out = tempDir();
    const first = await realign(['build-graph', '--model', 'test-org/cli-tiny', '--revision', 'v1', '--out', out]);
    expect(first.stderr).toMatch(/realign: downloading test-org\/cli-tiny \([0-9a-f]{12}\): \d+ of \d+ files/);
    expect(first.stderr).toMatch(/realign: test-org\/cli-tiny: model\.safetensors \([\d.]+ kB\) \d+\/\d+\n/);
    expect(first.code).toBe(0);
    expect(readdirSync(join(cache, 'models--test-org--cli-tiny', 'snapshots'))).toEqual([tagged]);
    expect(JSON.parse(first.stdout).built).toBe(true);

    hub.requests.length = 0;
    const offline = await realign(['build-graph', '--model', 'test-org/cli-tiny', '--revision', 'v1', '--out', out], {
      HF_HUB_OFFLINE: '1',
    });
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout).built).toBe(false);
    expect(hub.requests).toEqual([]);
  });

  it('realign serve loads a models.json whose model is an id with a revision, from the cache alone', async () => {
    const dir = tempDir();
    const config = join(dir, 'models.json');
    const port = 20000 + Math.floor(Math.random() * 30000);
    const models = [{ id: 'tiny', mode: 'single', model: 'test-org/cli-tiny', revision: 'v1', device: 'cpu', threads: 1 }];
    writeFileSync(config, JSON.stringify({ models, graph_cache: join(dir, 'graphs'), auth: { allow_unauthenticated: true } }));
    // the cache holds v1 (downloaded here, so that this test stands alone); serve must not ask the hub
    await resolveModelSource('test-org/cli-tiny', {
      cacheDir: cache,
      endpoint: hub.url,
      revision: 'v1',
      offline: false,
      token: undefined,
    });
    hub.requests.length = 0;
    const env = { ...process.env, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1', HF_TOKEN: '', HF_TOKEN_PATH: join(dir, 'no-token') };
    const proc = spawn(process.execPath, [BIN, 'serve', '--config', config, '--port', String(port)], {
      cwd: dir,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      // wait until the model has loaded or failed (status() says "failed: <why>")
      let state = 'loading';
      for (let i = 0; i < 160 && proc.exitCode === null && state === 'loading'; i++) {
        await new Promise((res) => setTimeout(res, 250));
        const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
        if (r) state = ((await r.json()) as { models: Record<string, string> }).models.tiny;
      }
      expect(state, stderr).toBe('ready');
      const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(['tiny']);
      expect(hub.requests).toEqual([]);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await new Promise((res) => proc.once('exit', res));
      }
    }
  });

  it('ends with status 1 and a message naming the id and the cache folder when the offline cache lacks the model', async () => {
    const r = await realign(['build-graph', '--model', 'test-org/absent', '--out', tempDir()], { HF_HUB_OFFLINE: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `"test-org/absent" at revision "main" is not in the Hugging Face cache ${join(cache, 'models--test-org--absent')}`,
    );
  });

  it('--revision with a folder is a usage error (status 2)', async () => {
    const r = await realign(['build-graph', '--model', tempDir(), '--revision', 'v1', '--out', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--revision applies to Hugging Face model ids (org/name), but the model options name folders');
  });
});
