/**
 * realign's ONNX Runtime binding over the C API (gpu-backend/src/ort/): the function table is the right one, ORT's
 * errors arrive as Errors with ORT's message, values and IoBindings run the graph like a plain run, and nothing leaks.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ensureGraph } from '../../../gpu-backend/src/graph/build.ts';
import { capi } from '../../../gpu-backend/src/ort/capi.ts';
import {
  IoBinding,
  MemoryInfo,
  OrtEnvironment,
  OrtError,
  Session,
  Value,
  copyTensors,
  liveObjects,
  transfers,
} from '../../../gpu-backend/src/ort/binding.ts';
import { ModelSession, probeCuda } from '../../../gpu-backend/src/ort/session.ts';
import { decode, openGraph, prefill } from '../helpers/graphs.ts';
import { cleanupTempDirs, tempDir, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

/** A full garbage collection (the test process runs without --expose-gc). */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A tiny single-model step graph (float32, CPU). */
function tinyGraph(): string {
  const dir = tinyCheckpoint({ arch: 'qwen2', seed: 7 });
  return ensureGraph(
    { mode: 'single', floatType: 'float32', maxContext: 64, model: openCheckpoint(dir) },
    tempDir('realign-ort-'),
  ).modelPath;
}

/** Feeds of a one-row prefill of `n` tokens with an empty cache of capacity 64. */
function feeds(session: Session, n: number): Record<string, Value> {
  const f: Record<string, Value> = {
    input_ids: Value.fromHost(
      'int64',
      BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7) % 50)),
      [1, n],
    ),
    seqlens_k: Value.fromHost('int32', Int32Array.of(n - 1), [1]),
    total_sequence_length: Value.fromHost('int32', Int32Array.of(n), []),
    positions: Value.fromHost('int64', BigInt64Array.of(BigInt(n - 1)), [1, 1]),
    lambda: Value.fromHost('float32', Float32Array.of(1), [1]),
    aligned_row: Value.fromHost('int64', BigInt64Array.of(0n), [1]),
    reference_row: Value.fromHost('int64', BigInt64Array.of(0n), [1]),
  };
  for (const input of session.inputs) {
    if (f[input.name]) continue;
    const dims = [1, input.dims[1], 64, input.dims[3]];
    f[input.name] = Value.fromHost('float32', new Float32Array(dims.reduce((a, b) => a * b)), dims);
  }
  return f;
}

describe('ONNX Runtime C API binding', () => {
  it('loads onnxruntime-node 1.29.0 and its C API version 29; statuses round-trip code and message', () => {
    expect(OrtEnvironment.version).toBe('1.29.0');
    expect(OrtEnvironment.availableProviders()).toContain('CPUExecutionProvider');
    // CreateStatus (slot 0) → GetErrorCode (1), GetErrorMessage (2) → ReleaseStatus (93), all through call()
    const status = capi().fn.CreateStatus(2, 'made by the test');
    expect(() => capi().check(status, 'TestCall')).toThrowError(
      /onnxruntime TestCall: made by the test \(ORT_INVALID_ARGUMENT\)/,
    );
    const m = MemoryInfo.cpu();
    expect(m.name).toBe('Cpu');
  });

  it("turns ORT's failures into Errors carrying ORT's message", () => {
    const missing = tempDir('realign-ort-') + '/nope.onnx';
    let err: unknown;
    try {
      Session.open(missing, { device: 'cpu' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OrtError);
    expect((err as OrtError).call).toBe('CreateSession');
    expect((err as OrtError).message).toMatch(/nope\.onnx/);
    const path = tinyGraph();
    // wrong input rank, reported by the run
    const s = Session.open(path, { device: 'cpu', intraOpThreads: 1 });
    const f = feeds(s, 4);
    f.seqlens_k = Value.fromHost('int32', Int32Array.of(3, 3), [2, 1]);
    const names = Object.keys(f);
    expect(() =>
      s.run(
        names,
        names.map((n) => f[n]),
        ['logits'],
        [null],
      ),
    ).toThrowError(/onnxruntime Run: .+/);
    s.dispose();
  });

  it.skipIf(probeCuda().available)('the CUDA provider fails with a clear Error where its library is missing', () => {
    // onnxruntime-node's library lists the CUDA EP, whose provider libraries are not installed on this machine
    expect(OrtEnvironment.availableProviders()).toContain('CUDAExecutionProvider');
    expect(() => Session.open(tinyGraph(), { device: 'cuda', cuda: { enable_cuda_graph: '1' } })).toThrowError(
      /CUDA execution provider could not be added \(are libonnxruntime_providers_cuda\.so .*libonnxruntime_providers_shared\.so/,
    );
  });

  it('IoBinding with KV caches bound as past and present (the same value) gives the logits of a plain run', () => {
    const s = Session.open(tinyGraph(), { device: 'cpu', intraOpThreads: 1 });
    const plainFeeds = feeds(s, 5);
    const names = Object.keys(plainFeeds);
    const presents = s.outputNames.filter((n) => n !== 'logits');
    const inPlace = presents.map((n) => plainFeeds[n.replace('present', 'past')]);
    const [plainLogits] = s.run(
      names,
      names.map((n) => plainFeeds[n]),
      ['logits', ...presents],
      [null, ...inPlace],
    );
    const expected = plainLogits.read() as Float32Array;
    const expectedKv = (plainFeeds['past_key.0'].hostData() as Float32Array).slice();

    const bound = feeds(s, 5);
    const binding = new IoBinding(s);
    for (const [n, v] of Object.entries(bound)) binding.bindInput(n, v);
    binding.bindOutputToDevice('logits', MemoryInfo.cpu());
    for (const n of presents) binding.bindOutput(n, bound[n.replace('present', 'past')]);
    transfers.reset();
    binding.run();
    binding.synchronizeOutputs();
    const outs = binding.outputs();
    expect(outs.length).toBe(1 + presents.length);
    const logits = outs[0]; // outputs come back in binding order
    expect(Array.from(logits.read() as Float32Array)).toEqual(Array.from(expected));
    expect(transfers.fromDevice).toBe(expected.byteLength);
    // the present KV went into the bound past buffer, in place
    expect(Array.from(bound['past_key.0'].hostData() as Float32Array)).toEqual(Array.from(expectedKv));
    for (const v of outs) v.dispose();
    binding.clearInputs();
    binding.clearOutputs();
    binding.dispose();
    plainLogits.dispose();
    for (const v of [...Object.values(plainFeeds), ...Object.values(bound)]) v.dispose();
    s.dispose();
  });

  it('allocator-owned values, views into them and CopyTensors', async () => {
    const m = await ModelSession.open(tinyGraph(), { device: 'cpu', threads: 1 });
    const a = Value.allocate(m.allocator, 'float32', [4, 3]);
    a.write(Float32Array.from({ length: 12 }, (_, i) => i));
    const rows12 = Value.view(a, 3, [2, 3], m.memory); // rows 1 and 2
    expect(Array.from(rows12.hostData() as Float32Array)).toEqual([3, 4, 5, 6, 7, 8]);
    const dst = Value.allocate(m.allocator, 'float32', [2, 3]);
    copyTensors([rows12], [dst]);
    expect(Array.from(dst.read() as Float32Array)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(() => Value.view(a, 10, [1, 3], m.memory)).toThrowError(/outside/);
    for (const v of [rows12, dst, a]) v.dispose();
    await m.release();
  });

  it('a session or allocator disposed before the values it allocated is released after them (by dispose or by GC)', async () => {
    const live = () => ({ ...liveObjects });
    const before = live();
    const m = await ModelSession.open(tinyGraph(), { device: 'cpu', threads: 1 });
    const a = Value.allocate(m.allocator, 'float32', [64, 64]);
    const view = Value.view(a, 64, [2, 64], m.memory);
    const f = feeds(m.session, 3);
    const names = Object.keys(f);
    const presents = m.session.outputNames.filter((n) => n !== 'logits');
    const outputs = m.session.run(
      names,
      names.map((n) => f[n]),
      ['logits', ...presents],
      [null, ...presents.map((n) => f[n.replace('present', 'past')])],
    );
    await m.release(); // the session and its allocator end their use here, before the values
    expect(() => m.allocator.handle).toThrowError(/after dispose/);
    // their C release waits for the values that live in their memory
    expect(live().ReleaseSession).toBe((before.ReleaseSession ?? 0) + 1);
    expect(live().ReleaseAllocator).toBe((before.ReleaseAllocator ?? 0) + 1);
    a.write(Float32Array.from({ length: 64 * 64 }, (_, i) => i));
    expect(Array.from((view.hostData() as Float32Array).subarray(0, 2))).toEqual([64, 65]);
    a.dispose(); // the view still reads a's memory: a's release waits for it
    expect((view.hostData() as Float32Array)[1]).toBe(65);
    view.dispose(); // the allocator's last value: its release runs now; the session still waits for the run's outputs
    expect(live().ReleaseAllocator ?? 0).toBe(before.ReleaseAllocator ?? 0);
    expect(live().ReleaseSession).toBe((before.ReleaseSession ?? 0) + 1);
    expect(outputs[0]!.dims.length).toBe(3);
    outputs.splice(1).forEach((v) => v.dispose()); // the in-place caches are the feeds' own values
    for (const v of Object.values(f)) v.dispose();
    outputs.length = 0; // the run's outputs are left to the garbage collector
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(live().ReleaseSession ?? 0).toBe(before.ReleaseSession ?? 0);
    expect(live().ReleaseAllocator ?? 0).toBe(before.ReleaseAllocator ?? 0);
    expect(live().ReleaseValue ?? 0).toBeLessThanOrEqual(before.ReleaseValue ?? 0);
  });

  it('2,000 runs keep RSS bounded and release every object (each run creates and frees its values)', async () => {
    const m = await ModelSession.open(tinyGraph(), { device: 'cpu', threads: 1 });
    const kvDims = [1, 2, 64, 16];
    const kv = Object.fromEntries(
      m.inputNames.filter((n) => n.startsWith('past_')).map((n) => [n, new Float32Array(kvDims.reduce((a, b) => a * b))]),
    );
    const step = async () => {
      const f = {
        input_ids: { type: 'int64' as const, data: BigInt64Array.of(1n, 2n, 3n), dims: [1, 3] },
        seqlens_k: { type: 'int32' as const, data: Int32Array.of(2), dims: [1] },
        total_sequence_length: { type: 'int32' as const, data: Int32Array.of(3), dims: [] },
        positions: { type: 'int64' as const, data: BigInt64Array.of(2n), dims: [1, 1] },
        lambda: { type: 'float32' as const, data: Float32Array.of(1), dims: [1] },
        aligned_row: { type: 'int64' as const, data: BigInt64Array.of(0n), dims: [1] },
        reference_row: { type: 'int64' as const, data: BigInt64Array.of(0n), dims: [1] },
        ...Object.fromEntries(Object.entries(kv).map(([n, d]) => [n, { type: 'float32' as const, data: d, dims: kvDims }])),
      };
      const inPlace = Object.fromEntries(
        Object.entries(kv).map(([n, d]) => [n.replace('past', 'present'), { type: 'float32' as const, data: d, dims: kvDims }]),
      );
      return m.run(f, ['logits'], inPlace);
    };
    const live = () => Object.values(liveObjects).reduce((a, b) => a + b, 0);
    for (let i = 0; i < 1000; i++) await step(); // warm up: arenas, JIT, allocator pools
    gc();
    const liveBefore = live();
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 2000; i++) await step();
    gc();
    const growthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    // every Value a run creates is released by the run itself: none are left for the finalizer
    expect(live()).toBe(liveBefore);
    console.info(`ort binding: RSS growth over 2,000 runs after warm-up: ${growthMb.toFixed(2)} MB`);
    // documented bound: under 32 MB of RSS growth over 2,000 runs after warm-up. RSS plateaus (measured outside
    // vitest: 137 MB after 1,000 runs, 138 after 3,000, one allocator jump to 152 by 4,000, 154 from 6,000 to 8,000);
    // in vitest 7–23 MB were seen over the window. The exact leak check is the live-object count above.
    expect(growthMb).toBeLessThan(32);
    await m.release();
  }, 120_000);

  it('2,000 engine decode steps through the IoBinding (rows leaving and joining) leave no objects behind and RSS bounded', async () => {
    const g = await openGraph('single', { model: tinyCheckpoint({ arch: 'qwen2', seed: 11 }) }, 64);
    const live = () => Object.values(liveObjects).reduce((a, b) => a + b, 0);
    let step = 0;
    const cycle = async (steps: number) => {
      // 4 sequences of 8-token prompts, decoded up to 48 tokens, then freed (rows moved and removed)
      const { handles } = await prefill(
        g,
        [0, 1, 2, 3].map((i) => ({ tokens: Array.from({ length: 8 }, (_, k) => (i * 5 + k) % 50), lambdas: [1] })),
      );
      for (let i = 0; i < steps; i++, step++)
        await decode(g, new Map(handles.map((h, k) => [h.id, { token: (k + i) % 50, lambdas: [1] }])), handles);
      for (const h of [handles[1], handles[0], handles[3], handles[2]]) g.rows.remove(h);
    };
    while (step < 1000) await cycle(40); // warm up
    gc();
    const liveBefore = live();
    const rssBefore = process.memoryUsage().rss;
    while (step < 1000 + 2000) await cycle(40);
    gc();
    const growthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    console.info(`ort binding: RSS growth over 2,000 IoBinding decode steps after warm-up: ${growthMb.toFixed(2)} MB`);
    expect(live()).toBe(liveBefore);
    // documented bound: RSS plateaus (measured outside vitest: 139 MB after 1,000 steps, 146 after 4,000, 165 after
    // 5,000 and still 166 after 8,000, one jump of the allocators), so 2,000 steps may show one such jump, not more
    expect(growthMb).toBeLessThan(32);
    await g.runner.release();
  }, 180_000);
});
