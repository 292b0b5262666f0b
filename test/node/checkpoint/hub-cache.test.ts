/**
 * Model ids resolved from a Hugging Face cache folder the test lays out as huggingface_hub does
 * (models--org--name/{blobs,refs,snapshots}), with no hub to ask: HF_HUB_CACHE and HF_HOME, refs/<branch>, a
 * revision by commit hash, partial snapshots, and a local folder always winning over an id.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DownloadEvent } from '../../../gpu-backend/src/checkpoint/hub/download.ts';
import { isModelId } from '../../../gpu-backend/src/checkpoint/hub/model-id.ts';
import { resolveModelSource } from '../../../gpu-backend/src/checkpoint/hub/resolve-model.ts';
import { hubCacheDir } from '../../../gpu-backend/src/checkpoint/hub/settings.ts';
import { loadServerConfig, readServerConfig } from '../../../gpu-backend/src/server/config.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';

afterAll(cleanupTempDirs);
beforeEach(() => {
  vi.stubEnv('HF_TOKEN', '');
  vi.stubEnv('HF_TOKEN_PATH', join(tempDir(), 'no-token'));
  vi.stubEnv('HF_HUB_CACHE', '');
  vi.stubEnv('HUGGINGFACE_HUB_CACHE', '');
  vi.stubEnv('HF_HOME', '');
  // a hub that is never there: any request these tests make fails
  vi.stubEnv('HF_ENDPOINT', 'http://127.0.0.1:9');
});
afterEach(() => vi.unstubAllEnvs());

/**
 * Everything resolution reported. A resolution that asked the (absent) hub would report falling back to the cache,
 * so an empty list shows the cache alone answered.
 */
const reported: string[] = [];
const onProgress = (e: DownloadEvent) => reported.push(e.type === 'note' ? e.message : e.type);
beforeEach(() => {
  reported.length = 0;
});

const C1 = 'a'.repeat(40);
const C2 = '0123456789abcdef0123456789abcdef01234567';

/** Lays out `id` in `cache`: one snapshot per commit with `files` as symlinks into blobs/, and the given refs. */
function layOut(
  cache: string,
  id: string,
  snapshots: Record<string, Record<string, string>>,
  refs: Record<string, string>,
): string {
  const repo = join(cache, `models--${id.replace('/', '--')}`);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  for (const [commit, files] of Object.entries(snapshots)) {
    const snap = join(repo, 'snapshots', commit);
    mkdirSync(snap, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      const blob = join(repo, 'blobs', createHash('sha1').update(text).digest('hex'));
      writeFileSync(blob, text);
      symlinkSync(relative(snap, blob), join(snap, name));
    }
  }
  for (const [ref, commit] of Object.entries(refs)) {
    mkdirSync(join(repo, 'refs', ref, '..'), { recursive: true });
    writeFileSync(join(repo, 'refs', ref), commit);
  }
  return repo;
}

const model = (tag: string) => ({
  'config.json': `{"tag":"${tag}"}`,
  'model.safetensors': `weights ${tag}`,
  'tokenizer.json': '{}',
});

describe('model ids resolved from the Hugging Face cache', () => {
  it('follows refs/main in HF_HUB_CACHE, and a branch, tag or commit given as the revision', async () => {
    const cache = tempDir('realign-hf-');
    const repo = layOut(cache, 'org/name', { [C1]: model('main'), [C2]: model('v1') }, { main: C1, v1: C2, 'refs/pr/3': C2 });
    vi.stubEnv('HF_HUB_CACHE', cache);
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    const baseDir = tempDir();
    expect(await resolveModelSource('org/name', { baseDir, onProgress })).toBe(join(repo, 'snapshots', C1));
    expect(await resolveModelSource('org/name', { baseDir, revision: 'v1', onProgress })).toBe(join(repo, 'snapshots', C2));
    expect(await resolveModelSource('org/name', { baseDir, revision: 'refs/pr/3', onProgress })).toBe(
      join(repo, 'snapshots', C2),
    );
    expect(await resolveModelSource('org/name', { baseDir, revision: C2, onProgress })).toBe(join(repo, 'snapshots', C2));
    expect(reported).toEqual([]);
  });

  it('finds the cache under HF_HOME/hub, or XDG_CACHE_HOME/huggingface/hub; HF_HUB_CACHE wins over both', async () => {
    const home = tempDir();
    const repo = layOut(join(home, 'hub'), 'org/name', { [C1]: model('home') }, { main: C1 });
    vi.stubEnv('HF_HOME', home);
    expect(await resolveModelSource('org/name', { baseDir: tempDir(), offline: true, onProgress })).toBe(
      join(repo, 'snapshots', C1),
    );
    expect(reported).toEqual([]);
    vi.stubEnv('HF_HOME', '');
    vi.stubEnv('XDG_CACHE_HOME', '/xdg');
    expect(hubCacheDir()).toBe('/xdg/huggingface/hub');
    vi.stubEnv('HF_HOME', '/hf-home');
    expect(hubCacheDir()).toBe('/hf-home/hub');
    vi.stubEnv('HF_HUB_CACHE', '/hub-cache');
    expect(hubCacheDir()).toBe('/hub-cache');
  });

  it('a complete snapshot named by commit hash needs no hub, even when online', async () => {
    const cache = tempDir();
    const repo = layOut(cache, 'org/name', { [C2]: model('pinned') }, {});
    vi.stubEnv('HF_HUB_OFFLINE', '0');
    expect(await resolveModelSource('org/name', { cacheDir: cache, baseDir: tempDir(), revision: C2, onProgress })).toBe(
      join(repo, 'snapshots', C2),
    );
    expect(reported).toEqual([]);
  });

  it('offline, a model not in the cache is an error naming the id, the revision and the cache folder', async () => {
    const cache = tempDir();
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    const baseDir = tempDir();
    await expect(resolveModelSource('deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B', { cacheDir: cache, baseDir })).rejects.toThrow(
      `"deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" at revision "main" is not in the Hugging Face cache ${cache}/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B and HF_HUB_OFFLINE forbids downloading it (and there is no folder ${baseDir}/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B)`,
    );
    // a branch the cache never saw is missing too, though other revisions are there
    layOut(cache, 'org/name', { [C1]: model('main') }, { main: C1 });
    await expect(resolveModelSource('org/name', { cacheDir: cache, baseDir, revision: 'dev' })).rejects.toThrow(
      /"org\/name" at revision "dev" is not in the Hugging Face cache/,
    );
  });

  it('offline, a partial snapshot (a shard or blob missing) is an error naming what is missing', async () => {
    const cache = tempDir();
    const index = JSON.stringify({
      metadata: {},
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    });
    layOut(
      cache,
      'org/sharded',
      { [C1]: { 'config.json': '{}', 'model.safetensors.index.json': index, 'model-00001-of-00002.safetensors': 'x' } },
      { main: C1 },
    );
    await expect(resolveModelSource('org/sharded', { cacheDir: cache, baseDir: tempDir(), offline: true })).rejects.toThrow(
      `(snapshot ${C1} lacks model-00002-of-00002.safetensors)`,
    );
    // a snapshot link whose blob was deleted counts as missing
    const repo = layOut(cache, 'org/pruned', { [C1]: model('x') }, { main: C1 });
    rmSync(join(repo, 'blobs', createHash('sha1').update('weights x').digest('hex')));
    await expect(resolveModelSource('org/pruned', { cacheDir: cache, baseDir: tempDir(), offline: true })).rejects.toThrow(
      `lacks model.safetensors`,
    );
  });

  it('a local folder always wins over an id; ./org/name and absolute paths are always paths', async () => {
    const cache = tempDir();
    layOut(cache, 'org/name', { [C1]: model('main') }, { main: C1 });
    const baseDir = tempDir();
    mkdirSync(join(baseDir, 'org', 'name'), { recursive: true });
    expect(await resolveModelSource('org/name', { cacheDir: cache, baseDir, offline: true })).toBe(join(baseDir, 'org', 'name'));
    expect(await resolveModelSource('./org/other', { cacheDir: cache, baseDir, offline: true })).toBe(
      join(baseDir, 'org', 'other'),
    );
    expect(await resolveModelSource('/abs/org/name', { cacheDir: cache, baseDir, offline: true })).toBe('/abs/org/name');
    expect(await resolveModelSource('models', { cacheDir: cache, baseDir, offline: true })).toBe(join(baseDir, 'models'));
    expect(isModelId('org/name', tempDir())).toBe(true);
    for (const v of ['org/name', './org/x', '../org/x', 'a/b/c', '/org/x', 'org', '.hidden/x', 'org/-x'])
      expect(isModelId(v, baseDir)).toBe(false);
  });

  it('refuses a revision that would leave the cache folder, and a token that is not a hub token', async () => {
    const opts = { cacheDir: tempDir(), baseDir: tempDir(), offline: true };
    for (const revision of ['../../etc', 'main/../..', '', 'a\\b']) {
      await expect(resolveModelSource('org/name', { ...opts, revision })).rejects.toThrow(
        `revision "${revision}" is not a branch, tag or commit name`,
      );
    }
    vi.stubEnv('HF_TOKEN', 'ghp_not_a_hub_token');
    await expect(resolveModelSource('org/name', opts)).rejects.toThrow(
      'the Hugging Face token from HF_TOKEN does not start with "hf_"',
    );
  });
});

describe('model ids in models.json', () => {
  /** Writes a models.json with `models` in a fresh folder; returns its path. */
  function modelsJson(models: Record<string, unknown>[]): string {
    const file = join(tempDir(), 'models.json');
    writeFileSync(file, JSON.stringify({ models }));
    return file;
  }

  it('model, reference and aligned accept ids (with revision), resolved once; folders stay relative to the file', async () => {
    const cache = tempDir();
    const ref = layOut(cache, 'org/ref', { [C1]: model('ref') }, { main: C1 });
    const aligned = layOut(cache, 'org/aligned', { [C2]: model('aligned') }, { v2: C2 });
    const single = layOut(cache, 'org/single', { [C1]: model('single') }, { main: C1 });
    const file = modelsJson([
      { id: 'fusion', mode: 'fusion', reference: 'org/ref', aligned: 'org/aligned', revision: 'v2' },
      { id: 'plain', mode: 'single', model: 'org/single' },
      { id: 'local', mode: 'single', model: 'checkpoints/here' },
    ]);
    // a folder of that name exists, so it is a folder (relative to models.json), not an id
    mkdirSync(join(file, '..', 'checkpoints', 'here'), { recursive: true });
    // the ref's v2 is its main commit: the revision applies to every id of the entry
    writeFileSync(join(ref, 'refs', 'v2'), C1);
    const config = await loadServerConfig(file, { cacheDir: cache, offline: true, onProgress });
    expect(config.models.map((m) => [m.reference, m.aligned, m.model])).toEqual([
      [join(ref, 'snapshots', C1), join(aligned, 'snapshots', C2), undefined],
      [undefined, undefined, join(single, 'snapshots', C1)],
      [undefined, undefined, join(file, '..', 'checkpoints', 'here')],
    ]);
    expect(reported).toEqual([]);
    // readServerConfig alone leaves ids for loadServerConfig and resolves folders
    expect(readServerConfig(file).models.map((m) => m.model)).toEqual([
      undefined,
      'org/single',
      join(file, '..', 'checkpoints', 'here'),
    ]);
  });

  it('an id that cannot be resolved names the entry and field; a revision on folders is an error', async () => {
    const file = modelsJson([{ id: 'x', mode: 'single', model: 'org/absent' }]);
    await expect(loadServerConfig(file, { cacheDir: tempDir(), offline: true })).rejects.toThrow(
      /^models config: models\.0\.model: "org\/absent" at revision "main" is not in the Hugging Face cache/,
    );
    const folders = modelsJson([{ id: 'y', mode: 'single', model: './here', revision: 'main' }]);
    await expect(loadServerConfig(folders, { offline: true })).rejects.toThrow(
      'models config: models.0.revision: applies to Hugging Face model ids, but the model paths of "y" are folders',
    );
  });
});
