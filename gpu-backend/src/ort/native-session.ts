/**
 * An open ONNX Runtime session over the C API: created from a model file or bytes with a SessionConfig, its inputs'
 * and outputs described, run with plain values (IoBinding runs through io-binding.ts).
 */
import { call, capi, readString, type Ptr } from './capi.ts';
import { appendCuda, LOG_ERROR, OrtEnvironment, SessionOptions, type SessionConfig } from './environment.ts';
import type { RunOptions } from './io-binding.ts';
import { Native, out } from './native.ts';
import { Allocator, CODE_TYPES, Value, type TensorType } from './values.ts';

/** Name, element type and dims (symbolic dims as -1) of a session input or output. */
export interface IoInfo {
  name: string;
  type: TensorType | 'other';
  dims: number[];
}

/** An open session. */
export class Session extends Native {
  readonly inputs: IoInfo[];
  readonly outputs: IoInfo[];

  private constructor(
    handle: Ptr,
    readonly config: SessionConfig,
  ) {
    super(handle, 'ReleaseSession');
    this.inputs = this.ioInfo('Input');
    this.outputs = this.ioInfo('Output');
  }

  /** Opens a model file (its external data is found next to it). */
  static open(modelPath: string, config: SessionConfig): Session {
    return Session.create(config, (env, options, o) => call('CreateSession', env, modelPath, options, o));
  }

  /** Opens a model held in memory (no external data). */
  static fromBytes(model: Uint8Array, config: SessionConfig): Session {
    return Session.create(config, (env, options, o) => call('CreateSessionFromArray', env, model, model.byteLength, options, o));
  }

  private static create(config: SessionConfig, create: (env: Ptr, options: Ptr, out: [Ptr]) => void): Session {
    const env = OrtEnvironment.get();
    const options = new SessionOptions();
    try {
      const h = options.handle;
      call('SetSessionGraphOptimizationLevel', h, config.graphOptimizationLevel ?? 99);
      call('SetSessionLogSeverityLevel', h, config.logSeverityLevel ?? LOG_ERROR);
      if (config.intraOpThreads) call('SetIntraOpNumThreads', h, config.intraOpThreads);
      if (config.interOpThreads) call('SetInterOpNumThreads', h, config.interOpThreads);
      call(config.cpuMemArena === false ? 'DisableCpuMemArena' : 'EnableCpuMemArena', h);
      call(config.memPattern === false ? 'DisableMemPattern' : 'EnableMemPattern', h);
      const entries = { 'session.intra_op.allow_spinning': config.allowSpinning ? '1' : '0', ...config.configEntries };
      for (const [k, v] of Object.entries(entries)) call('AddSessionConfigEntry', h, k, v);
      if (config.device === 'cuda') appendCuda(options, config.cuda ?? {});
      const o = out();
      create(env.handle, h, o);
      return new Session(o[0], config);
    } finally {
      options.dispose();
    }
  }

  get inputNames(): string[] {
    return this.inputs.map((i) => i.name);
  }

  get outputNames(): string[] {
    return this.outputs.map((o) => o.name);
  }

  /**
   * Runs with plain inputs and outputs: `outputs[i]` null lets ORT allocate it (returned, on the host), a Value is
   * written in place. Returns the outputs in order (the caller disposes the ones ORT allocated).
   */
  run(inputNames: string[], inputs: Value[], outputNames: string[], outputs: (Value | null)[], runOptions?: RunOptions): Value[] {
    const outPtrs = outputs.map((v) => (v ? v.handle : null));
    call(
      'Run',
      this.handle,
      runOptions?.handle ?? null,
      inputNames,
      inputs.map((v) => v.handle),
      inputs.length,
      outputNames,
      outputNames.length,
      outPtrs,
    );
    return outPtrs.map((p, i) => outputs[i] ?? Value.adopt(p, this));
  }

  private ioInfo(kind: 'Input' | 'Output'): IoInfo[] {
    const count: [number] = [0];
    call(kind === 'Input' ? 'SessionGetInputCount' : 'SessionGetOutputCount', this.handle, count);
    const allocator = Allocator.defaultHost();
    const result: IoInfo[] = [];
    for (let i = 0; i < count[0]; i++) {
      const n = out();
      call(kind === 'Input' ? 'SessionGetInputName' : 'SessionGetOutputName', this.handle, i, allocator, n);
      const name = readString(n[0]);
      call('AllocatorFree', allocator, n[0]);
      const typeInfo = out();
      call(kind === 'Input' ? 'SessionGetInputTypeInfo' : 'SessionGetOutputTypeInfo', this.handle, i, typeInfo);
      try {
        const tensor = out();
        call('CastTypeInfoToTensorInfo', typeInfo[0], tensor); // owned by the type info
        if (!tensor[0]) {
          result.push({ name, type: 'other', dims: [] });
          continue;
        }
        const code: [number] = [0];
        call('GetTensorElementType', tensor[0], code);
        const dc: [number] = [0];
        call('GetDimensionsCount', tensor[0], dc);
        const dims = new BigInt64Array(dc[0]);
        call('GetDimensions', tensor[0], dims, dc[0]);
        result.push({ name, type: CODE_TYPES.get(code[0]) ?? 'other', dims: Array.from(dims, Number) });
      } finally {
        capi().fn.ReleaseTypeInfo(typeInfo[0]);
      }
    }
    return result;
  }
}
