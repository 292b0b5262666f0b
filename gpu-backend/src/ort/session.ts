/**
 * The one module that imports onnxruntime-node. Everything else sees plain typed arrays.
 * `run()` is a synchronous native call that blocks its thread: callers run it inside the engine's worker thread.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

/** Where a graph runs. */
export type Device = 'cpu' | 'cuda';

/** Element types crossing the session boundary (float16 travels as raw bits in a Uint16Array; float64 is for training checks). */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'float64';

/** A tensor as the rest of the backend sees it. */
export interface HostTensor {
  type: TensorType;
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Float64Array;
  dims: number[];
}

/** Options for opening a session. */
export interface SessionOptions {
  device: Device;
  /** intra-op threads on CPU (default: ORT's choice) */
  threads?: number;
}

/** An open ONNX Runtime session. */
export class ModelSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly device: Device,
  ) {}

  /** Loads a model file (its external data is found next to it). */
  static async open(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: opts.device === 'cuda' ? [{ name: 'cuda', deviceId: 0 }, 'cpu'] : ['cpu'],
      graphOptimizationLevel: 'all',
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 3,
    });
    return new ModelSession(session, opts.device);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the graph. `inPlace` maps output names to tensors whose memory ONNX Runtime writes into (for the KV cache,
   * the same memory as the matching past input, which GroupQueryAttention then updates in place). Only `fetch`
   * outputs are returned.
   */
  async run(feeds: Record<string, HostTensor>, fetch: string[], inPlace: Record<string, HostTensor> = {}): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of fetch) fetches[name] = null;
    for (const [name, t] of Object.entries(inPlace)) fetches[name] = toOrt(t);
    const out = await this.session.run(ortFeeds, fetches as ort.InferenceSession.FetchesType);
    const result: Record<string, HostTensor> = {};
    for (const name of fetch) {
      const t = out[name];
      result[name] = { type: t.type as TensorType, data: t.data as HostTensor['data'], dims: [...t.dims] };
    }
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.type, t.data, t.dims);
}

/** Why the CUDA execution provider can or cannot be used here. */
export interface CudaProbe {
  available: boolean;
  reason: string;
}

/**
 * Checks whether onnxruntime-node can use CUDA: its provider libraries must sit next to the binding
 * (onnxruntime-node 1.29.0 with the CUDA 13 build of libonnxruntime_providers_{shared,cuda}.so).
 */
export function probeCuda(): CudaProbe {
  const require = createRequire(import.meta.url);
  let binDir: string;
  try {
    binDir = join(dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return { available: false, reason: 'onnxruntime-node is not installed' };
  }
  const missing = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'].filter((f) => !existsSync(join(binDir, f)));
  if (missing.length > 0) return { available: false, reason: `CUDA provider libraries not found in ${binDir}: ${missing.join(', ')}` };
  return { available: true, reason: `CUDA provider libraries found in ${binDir}` };
}
