// Worker thread of build-race.test.ts: registers tsx in this thread, waits for the start signal, then builds the graph.
import { register } from 'tsx/esm/api';
import { workerData, parentPort } from 'node:worker_threads';

register();
const { openCheckpoint } = await import('../../../gpu-backend/src/checkpoint/checkpoint.ts');
const { ensureGraph } = await import('../../../gpu-backend/src/graph/build.ts');
const { checkpoint, cache, gate } = workerData;
const spec = { mode: 'single', floatType: 'float32', maxContext: 64, model: openCheckpoint(checkpoint) };
const flag = new Int32Array(gate);
Atomics.add(flag, 1, 1);
Atomics.wait(flag, 0, 0); // every builder starts at once
try {
  const files = ensureGraph(spec, cache);
  parentPort.postMessage({ dir: files.dir, built: files.built, inputs: files.manifest.inputs?.length ?? null });
} catch (err) {
  parentPort.postMessage({ error: String(err?.stack ?? err) });
}
