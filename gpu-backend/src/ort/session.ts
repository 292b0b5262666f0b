/**
 * Sessions as the rest of the backend sees them, over realign's own binding of ONNX Runtime's C API (binding.ts).
 * Everything outside ort/ sees plain typed arrays, or Values it got from here.
 * `run()` is a synchronous native call that blocks its thread: callers run it inside the engine's worker thread.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { onnxruntimeLibDir } from './capi.ts';
import {
  Allocator,
  IoBinding,
  MemoryInfo,
  OrtEnvironment,
  Session,
  Value,
  type SessionConfig,
  type TensorData,
  type TensorType,
} from './binding.ts';

export {
  GPU_GRAPH_ID,
  IoBinding,
  MemoryInfo,
  OrtEnvironment,
  OrtError,
  RunOptions,
  TransferCounter,
  Value,
  copyTensors,
  liveObjects,
  transfers,
} from './binding.ts';
export type { TensorData, TensorType } from './binding.ts';

/** Where a graph runs. */
export type Device = 'cpu' | 'cuda';

/** A tensor as the rest of the backend sees it. */
export interface HostTensor {
  type: TensorType;
  data: TensorData;
  dims: number[];
}

/** Options for opening a session. */
export interface SessionOptions {
  device: Device;
  /** intra-op threads on CPU (default: ORT's choice) */
  threads?: number;
  /** spin-wait in the intra-op pool between runs (default off: several sessions alternate on few cores) */
  allowSpinning?: boolean;
  /** CUDA provider options (V2), e.g. { enable_cuda_graph: '1' } */
  cuda?: Record<string, string>;
  /**
   * CUDA graph capture (provider option `enable_cuda_graph`): every run of the session is captured once per
   * `gpu_graph_id` run option (graphRunOptions) and replayed after; CUDA only, ignored on the CPU
   */
  cudaGraphs?: boolean;
}

/** The CUDA provider option that turns on graph capture for a session. */
export const CUDA_GRAPH_OPTION = 'enable_cuda_graph';

/** The session settings the server runs with (the benchmark's old-path runner uses the same). */
export function sessionConfig(opts: SessionOptions): SessionConfig {
  return {
    device: opts.device,
    intraOpThreads: opts.threads ?? 0,
    graphOptimizationLevel: 99,
    cpuMemArena: true,
    memPattern: true,
    allowSpinning: opts.allowSpinning ?? false,
    cuda: opts.device === 'cuda' && opts.cudaGraphs ? { ...opts.cuda, [CUDA_GRAPH_OPTION]: '1' } : opts.cuda,
    logSeverityLevel: 3,
  };
}

/** An open ONNX Runtime session. */
export class ModelSession {
  /** memory the session's EP computes in (host memory on CPU) */
  readonly memory: MemoryInfo;
  private allocatorValue: Allocator | null = null;
  private readonly inputSet: Set<string>;

  private constructor(
    readonly session: Session,
    readonly device: Device,
  ) {
    this.memory = device === 'cuda' ? MemoryInfo.cuda(0) : MemoryInfo.cpu();
    this.inputSet = new Set(session.inputNames);
  }

  /** Loads a model file (its external data is found next to it). */
  static async open(modelPath: string, opts: SessionOptions): Promise<ModelSession> {
    return new ModelSession(Session.open(modelPath, sessionConfig(opts)), opts.device);
  }

  /** Opens a small model held in memory; `graphOptimizationLevel` 0 keeps it exactly as written. */
  static fromBytes(model: Uint8Array, opts: SessionOptions & { graphOptimizationLevel?: 0 | 1 | 2 | 99 }): ModelSession {
    const config = sessionConfig(opts);
    return new ModelSession(
      Session.fromBytes(model, {
        ...config,
        graphOptimizationLevel: opts.graphOptimizationLevel ?? config.graphOptimizationLevel,
      }),
      opts.device,
    );
  }

  /**
   * A session of another (small, in-memory) model on the same device with the same settings, unoptimised, without
   * CUDA graph capture (its runs bind other addresses each time).
   */
  fork(model: Uint8Array): ModelSession {
    const { [CUDA_GRAPH_OPTION]: _graphs, ...cuda } = this.session.config.cuda ?? {};
    return ModelSession.fromBytes(model, {
      device: this.device,
      threads: 1,
      cuda: this.session.config.cuda ? cuda : undefined,
      graphOptimizationLevel: 0,
    });
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** The allocator of the session's device memory (host memory on CPU). */
  get allocator(): Allocator {
    this.allocatorValue ??= Allocator.forSession(this.session, this.memory);
    return this.allocatorValue;
  }

  /** A new IoBinding of this session. */
  binding(): IoBinding {
    return new IoBinding(this.session);
  }

  /**
   * Runs the graph. `inPlace` maps output names to tensors whose memory ONNX Runtime writes into (for the KV cache,
   * the same memory as the matching past input, which GroupQueryAttention then updates in place). Only `fetch`
   * outputs are returned, copied to the host.
   */
  async run(
    feeds: Record<string, HostTensor>,
    fetch: string[],
    inPlace: Record<string, HostTensor> = {},
  ): Promise<Record<string, HostTensor>> {
    const created: Value[] = [];
    try {
      // as onnxruntime-node's run(), feeds the graph has no input for are ignored (the C API would refuse them)
      const inputNames = Object.keys(feeds).filter((n) => this.inputSet.has(n));
      const inputs = inputNames.map((n) => {
        const v = Value.fromHost(feeds[n].type, feeds[n].data, feeds[n].dims);
        created.push(v);
        return v;
      });
      const placed = Object.keys(inPlace);
      const outputNames = [...fetch, ...placed];
      const outputs: (Value | null)[] = [
        ...fetch.map(() => null),
        ...placed.map((n) => Value.fromHost(inPlace[n].type, inPlace[n].data, inPlace[n].dims)),
      ];
      for (const v of outputs) if (v) created.push(v);
      const results = this.session.run(inputNames, inputs, outputNames, outputs);
      const out: Record<string, HostTensor> = {};
      fetch.forEach((name, i) => {
        const v = results[i];
        created.push(v);
        out[name] = { type: v.type, data: v.read(), dims: [...v.dims] };
      });
      return out;
    } finally {
      for (const v of created) v.dispose();
    }
  }

  async release(): Promise<void> {
    this.allocatorValue?.dispose();
    this.allocatorValue = null;
    if (this.device === 'cuda') this.memory.dispose();
    this.session.dispose();
  }
}

/** Why the CUDA execution provider can or cannot be used here. */
export interface CudaProbe {
  available: boolean;
  reason: string;
}

/**
 * Checks whether ONNX Runtime can use CUDA: its provider libraries must sit next to onnxruntime-node's
 * libonnxruntime.so.1 (1.29.0 with the CUDA 13 build of libonnxruntime_providers_{shared,cuda}.so).
 */
export function probeCuda(): CudaProbe {
  let binDir: string;
  try {
    binDir = onnxruntimeLibDir();
  } catch {
    return { available: false, reason: 'onnxruntime-node is not installed' };
  }
  const missing = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'].filter(
    (f) => !existsSync(join(binDir, f)),
  );
  if (missing.length > 0)
    return { available: false, reason: `CUDA provider libraries not found in ${binDir}: ${missing.join(', ')}` };
  return { available: true, reason: `CUDA provider libraries found in ${binDir}; ONNX Runtime ${OrtEnvironment.version}` };
}
