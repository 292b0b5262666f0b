/**
 * Memory read probes that read the way a decode step reads: float32 MatMuls [1, K] × [K, N] whose B are
 * *initializers* (external data, so ONNX Runtime loads and prepacks them as it does a model's weights), in a session
 * opened with the server's options (ort/session.ts: same intra-op threads, same allocator) — the kernel, the packed
 * layout and the thread split of a float32 decode step's weight reads, over ≥ 1 GiB, far past every cache (L3 here:
 * 32 MiB). GB/s = the initializers' bytes ÷ the run's time.
 *
 * - 'chain' (the floors' probe): 31 pairs of the qwen2.5-0.5b MLP's matrices in sequence, [1, 896] × [896, 4864] then
 *   × [4864, 896] (62 dependent MatMuls, 1.08 GB) — the same op sizes and the same op-after-op dependency as a step;
 * - 'single': one MatMul [1, 4096] × [4096, 65536] (1 GiB) — one op, whose time is that of its slowest thread.
 *
 * Matrix i holds the one value c_i / K with c_i = 1 + i/1024, a different value for every matrix: ONNX Runtime shares
 * initializers of identical content (a chain of identical matrices became one 17 MB matrix read 62 times, from
 * cache, at "84 GB/s"), and distinct contents keep every byte resident and read. The output is then Π c_i
 * everywhere, checked against float64. The graphs are written once under the bench folder.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Graph } from '../../gpu-backend/src/graph/ir.ts';
import { writeOnnxModel } from '../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession } from '../../gpu-backend/src/ort/session.ts';
import { BENCH_ROOT } from './models.ts';

export interface Probe {
  /** what it reads */
  name: string;
  /** bytes read by one run */
  bytes: number;
  /** one run; returns its ms */
  run: () => Promise<number>;
  release: () => Promise<void>;
}

export type MatMulProbeShape = 'chain' | 'single';

const SHAPES: Record<MatMulProbeShape, { name: string; mats: [number, number][] }> = {
  chain: {
    name: '62 dependent MatMuls [1, 896] × [896, 4864] × [4864, 896] … (31 MLP-sized pairs, float32, prepacked initializers)',
    mats: Array.from({ length: 62 }, (_, i) => (i % 2 === 0 ? [896, 4864] : [4864, 896])),
  },
  single: {
    name: 'one MatMul [1, 4096] × [4096, 65536] (float32, a prepacked initializer)',
    mats: [[4096, 65536]],
  },
};

const scale = (i: number) => 1 + i / 1024;

function probeGraph(shape: MatMulProbeShape): string {
  const dir = join(BENCH_ROOT, 'probes', `matmul-${shape}-distinct`);
  const path = join(dir, 'probe.onnx');
  if (existsSync(path) && existsSync(`${path}.data`)) return path;
  mkdirSync(dir, { recursive: true });
  const mats = SHAPES[shape].mats;
  const g = new Graph(`matmul-probe-${shape}`);
  let x = g.input('x', 'float32', [1, mats[0][0]]);
  mats.forEach(([K, N], i) => {
    const w = g.initializer(`w${i}`, 'float32', [K, N], () => new Uint8Array(new Float32Array(K * N).fill(scale(i) / K).buffer));
    x = g.op1('MatMul', [x, w], {}, `/MatMul${i}`);
  });
  g.output(x, 'y', 'float32', [1, mats[mats.length - 1][1]]);
  writeOnnxModel(g, dir, 'probe');
  return path;
}

export async function openMatMulProbe(shape: MatMulProbeShape = 'chain'): Promise<Probe> {
  const { name, mats } = SHAPES[shape];
  const session = await ModelSession.open(probeGraph(shape), { device: 'cpu' });
  const K0 = mats[0][0];
  const N1 = mats[mats.length - 1][1];
  const data = new Float32Array(K0).fill(1);
  const expected = mats.reduce((p, _, i) => p * scale(i), 1);
  return {
    name,
    bytes: mats.reduce((s, [K, N]) => s + K * N * 4, 0),
    run: async () => {
      const t0 = performance.now();
      const { y } = await session.run({ x: { type: 'float32', data, dims: [1, K0] } }, ['y']);
      const dt = performance.now() - t0;
      const out = y.data as Float32Array;
      for (const v of [out[0], out[N1 - 1]])
        if (!(Math.abs(v - expected) < 1e-3 * expected)) throw new Error(`matmul probe: ${v}, expected ${expected}`);
      return dt;
    },
    release: () => session.release(),
  };
}
