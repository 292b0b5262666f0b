/**
 * Model ids downloaded through @huggingface/hub from a stand-in hub (stand-in-hub.ts) serving a tiny checkpoint made
 * by realign's own init-model: the cache layout, only the files a model needs, the cache reused, tokens, altered or
 * stalled downloads, and errors that name what to do.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import type { DownloadEvent } from '../../../gpu-backend/src/checkpoint/hub/download.ts';
import { downloadReporter, reporterMode } from '../../../gpu-backend/src/checkpoint/hub/progress.ts';
import { resolveModelSource, type ResolveOptions } from '../../../gpu-backend/src/checkpoint/hub/resolve-model.ts';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { filesOf, StandInHub, type Files } from './stand-in-hub.ts';

const seed = testSeed();
/** Files a real repo carries that a model does not need: none may be fetched. */
const EXTRAS: [string, Buffer][] = [
  ['README.md', Buffer.from('# tiny\n')],
  ['.gitattributes', Buffer.from('*.safetensors filter=lfs diff=lfs merge=lfs -text\n')],
  ['pytorch_model.bin', Buffer.alloc(200_000, 7)],
  ['consolidated.safetensors', Buffer.alloc(100_000, 3)],
  ['onnx/model.onnx', Buffer.alloc(50_000, 1)],
];

let hub: StandInHub;
let single: Files;
let sharded: Files;
/** what init-model writes, plus a chat template file as recent transformers saves it: all of it is needed */
let MODEL_FILES: string[];

/** The tiny checkpoint's files, with its weights re-written as shards of at most `shardBytes`. */
function shardedFiles(dir: string, shardBytes: number): Files {
  const files = filesOf(dir).set('chat_template.jinja', Buffer.from('{{ messages }}'));
  const store = TensorStore.open(dir);
  const tensors = [...store.entries.values()].map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    bytes: () => store.readBytes(e.name).bytes,
  }));
  const shardDir = tempDir();
  writeWeights(shardDir, tensors, shardBytes);
  files.delete('model.safetensors');
  for (const [p, b] of filesOf(shardDir)) files.set(p, b);
  return files;
}

beforeAll(async () => {
  const dir = join(tempDir(), 'tiny');
  initModel(dir, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32' });
  single = filesOf(dir).set('chat_template.jinja', Buffer.from('{% for m in messages %}{{ m.content }}{% endfor %}'));
  sharded = shardedFiles(dir, 120_000);
  MODEL_FILES = [...single.keys()].sort();
  expect(MODEL_FILES).toEqual([
    'chat_template.jinja',
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  hub = await new StandInHub().start();
});
afterAll(async () => {
  await hub.stop();
  cleanupTempDirs();
});
beforeEach(() => {
  // the machine's own token must not leak into these tests
  vi.stubEnv('HF_TOKEN', '');
  vi.stubEnv('HUGGING_FACE_HUB_TOKEN', '');
  vi.stubEnv('HF_TOKEN_PATH', join(tempDir(), 'no-token'));
});
afterEach(() => {
  hub.requests.length = 0;
  hub.corrupt.clear();
  hub.stall.clear();
  hub.pageSize = 1000;
  hub.apiStatus = undefined;
  vi.unstubAllEnvs();
});

const withExtras = (files: Files): Files => new Map([...files, ...EXTRAS]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let repoCount = 0;
/** A fresh repo id, so that tests do not share cache entries. */
const newId = () => `test-org/tiny-${++repoCount}`;
const options = (cacheDir: string, extra: ResolveOptions = {}): ResolveOptions => ({
  cacheDir,
  endpoint: hub.url,
  offline: false,
  baseDir: tempDir(),
  ...extra,
});

describe('model ids downloaded from a stand-in hub', () => {
  it('downloads only the files a model needs, in the hub cache layout, through the hub file API', async () => {
    const id = newId();
    const commit = hub.commit(id, withExtras(single));
    const cacheDir = tempDir('realign-hf-cache-');
    const events: DownloadEvent[] = [];
    const dir = await resolveModelSource(id, options(cacheDir, { onProgress: (e) => events.push(e) }));

    const repoDir = join(cacheDir, `models--${id.replace('/', '--')}`);
    expect(dir).toBe(join(repoDir, 'snapshots', commit));
    expect(readdirSync(dir).sort()).toEqual(MODEL_FILES);
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(commit);
    // snapshot entries are relative symlinks into blobs/, the LFS weights named by their sha256
    for (const f of MODEL_FILES) {
      expect(lstatSync(join(dir, f)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(dir, f))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      expect(readFileSync(join(dir, f)).equals(single.get(f)!)).toBe(true);
    }
    expect(readlinkSync(join(dir, 'model.safetensors'))).toBe(`../../blobs/${sha256(single.get('model.safetensors')!)}`);
    expect(readdirSync(join(repoDir, 'blobs')).filter((b) => b.includes('incomplete'))).toEqual([]);
    expect(openCheckpoint(dir).config.hiddenSize).toBe(64);

    // the calls @huggingface/hub made: model info, the listing, then resolve/<commit>/<file> per file, LFS via the CDN
    expect(hub.requested('/api/models/').map((r) => r.path.split('?')[0])).toEqual([
      `/api/models/${id}/revision/main`,
      `/api/models/${id}/tree/${commit}`,
    ]);
    const resolved = new Set(hub.requested(`/${id}/resolve/`).map((r) => r.path.slice(`/${id}/resolve/${commit}/`.length)));
    expect([...resolved].sort()).toEqual(MODEL_FILES);
    expect(hub.requested('/cdn/').length).toBeGreaterThan(0);
    for (const [extra] of EXTRAS) expect(resolved.has(extra)).toBe(false);

    // progress: a plan, bytes that only grow and reach the total, a line per file, done
    const plan = events.find((e) => e.type === 'plan')!;
    expect(plan).toMatchObject({ type: 'plan', id, commit, presentBytes: 0 });
    const total = MODEL_FILES.reduce((s, f) => s + single.get(f)!.length, 0);
    expect(plan.type === 'plan' && plan.totalBytes).toBe(total);
    const done = events.flatMap((e) => (e.type === 'bytes' ? [e.doneBytes] : []));
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(done.at(-1)).toBe(total);
    expect(events.filter((e) => e.type === 'file')).toHaveLength(MODEL_FILES.length);
    expect(events.at(-1)).toMatchObject({ type: 'done', downloadedBytes: total, dir });
  });

  it('downloads the shards an index lists (across a paged listing), not other safetensors files', async () => {
    const id = newId();
    hub.pageSize = 3;
    const commit = hub.commit(id, withExtras(sharded));
    const shards = [...sharded.keys()].filter((p) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(p));
    expect(shards.length).toBeGreaterThan(1);
    const dir = await resolveModelSource(id, options(tempDir()));
    expect(readdirSync(dir).sort()).toEqual(
      [...MODEL_FILES.filter((f) => f !== 'model.safetensors'), 'model.safetensors.index.json', ...shards].sort(),
    );
    expect(hub.requested(`/api/models/${id}/tree/${commit}`).length).toBeGreaterThan(2);
    expect(hub.requested(`/${id}/resolve/${commit}/consolidated.safetensors`)).toEqual([]);
    expect(openCheckpoint(dir).store.entries.size).toBe(TensorStore.open(dir).entries.size);
  });

  it('reuses the cache: a branch costs one lookup, a cached commit or offline mode none', async () => {
    const id = newId();
    const commit = hub.commit(id, single);
    const cacheDir = tempDir();
    const first = await resolveModelSource(id, options(cacheDir));
    hub.requests.length = 0;
    expect(await resolveModelSource(id, options(cacheDir))).toBe(first);
    expect(hub.requests.map((r) => r.path.split('?')[0])).toEqual([`/api/models/${id}/revision/main`]);
    hub.requests.length = 0;
    expect(await resolveModelSource(id, options(cacheDir, { revision: commit }))).toBe(first);
    expect(await resolveModelSource(id, options(cacheDir, { offline: true }))).toBe(first);
    expect(hub.requests).toEqual([]);
  });

  it('a new commit on main fetches only the files that changed and moves refs/main', async () => {
    const id = newId();
    const cacheDir = tempDir();
    const old = hub.commit(id, single);
    await resolveModelSource(id, options(cacheDir));
    const config = JSON.parse(single.get('config.json')!.toString());
    const changed = new Map(single).set('config.json', Buffer.from(JSON.stringify({ ...config, rope_theta: 20000 })));
    const next = hub.commit(id, changed);
    hub.requests.length = 0;
    const dir = await resolveModelSource(id, options(cacheDir));
    expect(dir.endsWith(next)).toBe(true);
    expect(hub.requested(`/${id}/resolve/`).map((r) => r.path.split('/').at(-1))).toEqual(['config.json', 'config.json']);
    expect(readFileSync(join(cacheDir, `models--${id.replace('/', '--')}`, 'refs', 'main'), 'utf8')).toBe(next);
    expect(openCheckpoint(dir).config.ropeTheta).toBe(20000);
    expect(existsSync(join(cacheDir, `models--${id.replace('/', '--')}`, 'snapshots', old, 'config.json'))).toBe(true);
  });

  it('a revision (branch or tag) downloads that commit and writes its ref', async () => {
    const id = newId();
    const tagged = hub.commit(id, single, { ref: 'v1' });
    hub.commit(id, withExtras(single));
    const cacheDir = tempDir();
    const dir = await resolveModelSource(id, options(cacheDir, { revision: 'v1' }));
    expect(dir.endsWith(tagged)).toBe(true);
    expect(readFileSync(join(cacheDir, `models--${id.replace('/', '--')}`, 'refs', 'v1'), 'utf8')).toBe(tagged);
  });

  it('private models need HF_TOKEN, which every request then carries (HF_ENDPOINT names the hub)', async () => {
    const id = newId();
    hub.commit(id, single, { token: 'hf_test_reader' });
    const cacheDir = tempDir();
    await expect(resolveModelSource(id, options(cacheDir))).rejects.toThrow(/refused "test-org\/tiny-\d+" \(401\).*set HF_TOKEN/);
    vi.stubEnv('HF_TOKEN', 'hf_wrong');
    await expect(resolveModelSource(id, options(cacheDir))).rejects.toThrow(
      /no model "test-org\/tiny-\d+" at revision "main" on http:\/\/127\.0\.0\.1:\d+/,
    );
    vi.stubEnv('HF_TOKEN', 'hf_test_reader');
    vi.stubEnv('HF_ENDPOINT', hub.url);
    hub.requests.length = 0;
    const dir = await resolveModelSource(id, { cacheDir, offline: false, baseDir: tempDir() });
    expect(openCheckpoint(dir).config.numLayers).toBe(2);
    const toHub = hub.requests.filter((r) => !r.path.startsWith('/cdn/'));
    expect(toHub.length).toBeGreaterThan(2);
    for (const r of toHub) expect(r.authorization).toBe('Bearer hf_test_reader');
  });

  it('refuses altered bytes and keeps nothing; the next try downloads cleanly', async () => {
    const id = newId();
    hub.commit(id, single);
    hub.corrupt.add('model.safetensors');
    const cacheDir = tempDir();
    const repoDir = join(cacheDir, `models--${id.replace('/', '--')}`);
    await expect(resolveModelSource(id, options(cacheDir))).rejects.toThrow(
      /model\.safetensors: the downloaded bytes hash to [0-9a-f]{64}, not [0-9a-f]{64}.*nothing was kept/,
    );
    expect(
      readdirSync(join(repoDir, 'blobs')).some((b) => b === sha256(single.get('model.safetensors')!) || b.includes('incomplete')),
    ).toBe(false);
    expect(existsSync(join(repoDir, 'refs', 'main'))).toBe(false);
    hub.corrupt.clear();
    const dir = await resolveModelSource(id, options(cacheDir));
    expect(readFileSync(join(dir, 'model.safetensors')).equals(single.get('model.safetensors')!)).toBe(true);
  });

  it('gives up on a download that stalls, leaving no partial file', async () => {
    const id = newId();
    hub.commit(id, single);
    hub.stall.add('model.safetensors');
    const cacheDir = tempDir();
    const t0 = Date.now();
    await expect(resolveModelSource(id, options(cacheDir, { stallMs: 500 }))).rejects.toThrow(
      /no data for 0\.5 s while downloading model\.safetensors/,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    const blobs = join(cacheDir, `models--${id.replace('/', '--')}`, 'blobs');
    expect(readdirSync(blobs).filter((b) => b.includes('incomplete') || b === sha256(single.get('model.safetensors')!))).toEqual(
      [],
    );
  });

  it('names the id and the hub for a model that does not exist; refuses a repo without safetensors weights or with shard names that leave the folder', async () => {
    vi.stubEnv('HF_TOKEN', 'hf_any');
    await expect(resolveModelSource('test-org/absent', options(tempDir()))).rejects.toThrow(
      /no model "test-org\/absent" at revision "main" on http:\/\/127\.0\.0\.1:\d+ \(and there is no folder \/.*test-org\/absent\)/,
    );
    const id = newId();
    hub.commit(id, new Map([...single].filter(([p]) => p !== 'model.safetensors')).set('pytorch_model.bin', Buffer.alloc(10)));
    await expect(resolveModelSource(id, options(tempDir()))).rejects.toThrow(
      /has no model\.safetensors or model\.safetensors\.index\.json.*\(the repo has pytorch_model\.bin\)/,
    );
    // a weight index whose shard names would leave the snapshot folder is refused before anything is written there
    const evil = newId();
    const index = JSON.stringify({ metadata: {}, weight_map: { 'model.embed_tokens.weight': '../../../outside.safetensors' } });
    hub.commit(
      evil,
      new Map([...single].filter(([p]) => p !== 'model.safetensors')).set('model.safetensors.index.json', Buffer.from(index)),
    );
    const cacheDir = tempDir();
    await expect(resolveModelSource(evil, options(cacheDir))).rejects.toThrow(
      /weight_map names a shard "\.\.\/\.\.\/\.\.\/outside\.safetensors" that is not a \.safetensors file name/,
    );
    expect(hub.requested(`/${evil}/resolve/`).map((r) => r.path.split('/').at(-1))).toEqual([
      'model.safetensors.index.json',
      'model.safetensors.index.json',
    ]);
  });

  it('falls back to a complete cached copy when the hub cannot be reached or fails, and says why when there is none', async () => {
    const id = newId();
    hub.commit(id, single);
    const cacheDir = tempDir();
    const dir = await resolveModelSource(id, options(cacheDir));
    const closed = new StandInHub();
    await closed.start();
    const deadUrl = closed.url;
    await closed.stop();
    const notes: string[] = [];
    const again = await resolveModelSource(
      id,
      options(cacheDir, { endpoint: deadUrl, onProgress: (e) => e.type === 'note' && notes.push(e.message) }),
    );
    expect(again).toBe(dir);
    expect(notes.join('\n')).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); using the cached/);
    // a hub that answers with an error cannot say where main points now either
    hub.apiStatus = 503;
    notes.length = 0;
    expect(
      await resolveModelSource(id, options(cacheDir, { onProgress: (e) => e.type === 'note' && notes.push(e.message) })),
    ).toBe(dir);
    expect(notes.join('\n')).toMatch(
      /could not be asked \(test-org\/tiny-\d+: http:\/\/127\.0\.0\.1:\d+ answered 503: the hub is having trouble.*\); using the cached/,
    );
    await expect(resolveModelSource(id, options(tempDir()))).rejects.toThrow(/answered 503: the hub is having trouble/);
    hub.apiStatus = undefined;
    const fresh = tempDir();
    await expect(resolveModelSource(id, options(fresh, { endpoint: deadUrl }))).rejects.toThrow(
      new RegExp(`cannot reach .*ECONNREFUSED.*the cache ${fresh}/models--test-org--tiny-\\d+ has no complete copy`),
    );
    rmSync(fresh, { recursive: true, force: true });
  });

  it('reports progress as one line per file in logs and as a redrawn bar on a terminal (REALIGN_PROGRESS chooses)', async () => {
    const id = newId();
    vi.stubEnv('REALIGN_PROGRESS', '');
    hub.commit(id, single);
    const lines: string[] = [];
    await resolveModelSource(
      id,
      options(tempDir(), { onProgress: downloadReporter({ write: (s) => lines.push(s), isTTY: false }) }),
    );
    const text = lines.join('');
    expect(text).toMatch(
      new RegExp(
        `^realign: downloading ${id} \\([0-9a-f]{12}\\): ${MODEL_FILES.length} of ${MODEL_FILES.length} files, [\\d.]+ kB, into /`,
      ),
    );
    for (const f of MODEL_FILES)
      expect(text).toMatch(new RegExp(`realign: ${id}: ${f.replace('.', '\\.')} \\([\\d.]+ k?B\\) \\d/${MODEL_FILES.length}\\n`));
    expect(text).not.toContain('\r');

    const id2 = newId();
    hub.commit(id2, single);
    const tty: string[] = [];
    await resolveModelSource(
      id2,
      options(tempDir(), { onProgress: downloadReporter({ write: (s) => tty.push(s), isTTY: true }) }),
    );
    const bar = tty.join('');
    expect(bar).toMatch(/\r {2}\[#{30}\] 100% {2}[\d.]+ kB \/ [\d.]+ kB/);
    expect(bar).toMatch(/realign: test-org\/tiny-\d+: [\d.]+ kB in [\d.]+ s\n$/);

    vi.stubEnv('REALIGN_PROGRESS', 'off');
    const id3 = newId();
    hub.commit(id3, single);
    const off: string[] = [];
    await resolveModelSource(
      id3,
      options(tempDir(), { onProgress: downloadReporter({ write: (s) => off.push(s), isTTY: true }) }),
    );
    expect(off).toEqual([]);
    vi.stubEnv('REALIGN_PROGRESS', 'lines');
    expect(reporterMode({ write: () => 0, isTTY: true })).toBe('lines');
    vi.stubEnv('REALIGN_PROGRESS', 'bar');
    expect(reporterMode({ write: () => 0, isTTY: false })).toBe('bar');
  });
});
