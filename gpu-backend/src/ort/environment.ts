/**
 * The ONNX Runtime environment, session options and execution providers: what a session is created with.
 */
import { call, capi, OrtError, readPointers, readString, type Ptr } from './capi.ts';
import { Native, out } from './native.ts';

/** Log severity for the environment and sessions: 0 verbose … 3 error, 4 fatal. */
export const LOG_ERROR = 3;

/** The process' ONNX Runtime environment (ORT keeps one per process; this is this thread's reference to it). */
export class OrtEnvironment extends Native {
  private static current: OrtEnvironment | null = null;

  private constructor(handle: Ptr) {
    super(handle, 'ReleaseEnv');
  }

  static get(): OrtEnvironment {
    if (!OrtEnvironment.current) {
      const o = out();
      call('CreateEnv', LOG_ERROR, 'realign', o);
      OrtEnvironment.current = new OrtEnvironment(o[0]);
    }
    return OrtEnvironment.current;
  }

  /** The library's version string (e.g. "1.29.0"). */
  static get version(): string {
    return capi().version;
  }

  /** Execution providers compiled into the loaded library (e.g. CUDAExecutionProvider, CPUExecutionProvider). */
  static availableProviders(): string[] {
    const o = out();
    const count: [number] = [0];
    call('GetAvailableProviders', o, count);
    try {
      return readPointers(o[0], count[0]).map(readString);
    } finally {
      call('ReleaseAvailableProviders', o[0], count[0]);
    }
  }
}

/** Options of one session, as the server runs them. */
export interface SessionConfig {
  device: 'cpu' | 'cuda';
  /** intra-op threads (0: ORT's choice) */
  intraOpThreads?: number;
  interOpThreads?: number;
  /** 0 disable all … 99 all (default) */
  graphOptimizationLevel?: 0 | 1 | 2 | 99;
  /** default true (as onnxruntime-node's defaults) */
  cpuMemArena?: boolean;
  memPattern?: boolean;
  /** `session.intra_op.allow_spinning`; default false: several sessions alternating on few cores */
  allowSpinning?: boolean;
  /** further session config entries */
  configEntries?: Record<string, string>;
  /** CUDA provider options (V2), e.g. { device_id: '0', enable_cuda_graph: '1' } */
  cuda?: Record<string, string>;
  logSeverityLevel?: number;
}

export class SessionOptions extends Native {
  constructor() {
    const o = out();
    call('CreateSessionOptions', o);
    super(o[0], 'ReleaseSessionOptions');
  }
}

class CudaProviderOptions extends Native {
  constructor() {
    const o = out();
    call('CreateCUDAProviderOptions', o);
    super(o[0], 'ReleaseCUDAProviderOptions');
  }
}

export function appendCuda(options: SessionOptions, settings: Record<string, string>): void {
  if (!OrtEnvironment.availableProviders().includes('CUDAExecutionProvider')) {
    throw new Error('the loaded ONNX Runtime library has no CUDA execution provider');
  }
  const cuda = new CudaProviderOptions();
  try {
    const all = { device_id: '0', ...settings };
    const keys = Object.keys(all);
    call(
      'UpdateCUDAProviderOptions',
      cuda.handle,
      keys,
      keys.map((k) => all[k as keyof typeof all]),
      keys.length,
    );
    call('SessionOptionsAppendExecutionProvider_CUDA_V2', options.handle, cuda.handle);
  } catch (err) {
    if (err instanceof OrtError) {
      throw new Error(
        `CUDA execution provider could not be added (are libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of the same version next to libonnxruntime.so.1, and CUDA's libraries on LD_LIBRARY_PATH?): ${err.ortMessage}`,
      );
    }
    throw err;
  } finally {
    cuda.dispose();
  }
}
