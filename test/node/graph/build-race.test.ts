/**
 * Graph builds racing on one cache: engines of one process (worker threads share a pid) and several processes may
 * build the same graph at once. Each builder writes into its own temporary folder; the first to finish publishes
 * it, the others discard theirs and use the published graph, and nothing half-built is left.
 */
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../../gpu-backend/src/ort/session.ts';
import { cleanupTempDirs, tempDir, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

describe('ensureGraph under concurrent builders', () => {
  it('three threads building the same graph at once all get the one complete graph; no partial folder stays', async () => {
    const checkpoint = tinyCheckpoint({ arch: 'qwen2', seed: 41 });
    const cache = tempDir('realign-graph-race-');
    const gate = new SharedArrayBuffer(8);
    const flag = new Int32Array(gate);
    const workers = [0, 1, 2].map(
      () => new Worker(new URL('./build-race-worker.mjs', import.meta.url), { workerData: { checkpoint, cache, gate } }),
    );
    const results = workers.map(
      (w) =>
        new Promise<{ dir?: string; built?: boolean; error?: string }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    while (Atomics.load(flag, 1) < workers.length) await new Promise((r) => setTimeout(r, 10));
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const out = await Promise.all(results);
    await Promise.all(workers.map((w) => w.terminate()));
    for (const r of out) expect(r.error, r.error).toBeUndefined();
    expect(new Set(out.map((r) => r.dir)).size).toBe(1);
    expect(out.filter((r) => r.built).length).toBeGreaterThanOrEqual(1);
    expect(readdirSync(cache), 'one graph folder and no partial build left').toHaveLength(1);
    const session = await ModelSession.open(`${out[0]!.dir}/model.onnx`, { device: 'cpu', threads: 1 });
    await session.release();
  }, 60_000);
});
