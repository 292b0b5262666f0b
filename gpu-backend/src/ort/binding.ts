/**
 * realign's ONNX Runtime binding: objects over the C API (capi.ts) that release what they own exactly once,
 * either by an explicit dispose() or, as a safety net, when they are garbage collected (FinalizationRegistry).
 *
 *   OrtEnvironment (one per thread) ─► SessionOptions ─► Session ─► IoBinding ─► RunWithBinding
 *                                       (threads, EPs)     │           ▲
 *   MemoryInfo (cpu | cuda) ─► Allocator (per session) ─► Value (tensor over host memory or allocator-owned)
 *
 * Host↔device traffic through bound values is counted in `transfers` (see TransferCounter).
 */
import { addressOf, call, capi, hostView, OrtError, readPointers, readString, type Ptr } from './capi.ts';

export { OrtError } from './capi.ts';

/** Element types crossing the boundary (float16 travels as raw bits in a Uint16Array). */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'float64' | 'bool' | 'uint8';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Float64Array | Uint8Array;

const TYPE_CODES: Record<TensorType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
const CODE_TYPES = new Map<number, TensorType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as TensorType]));
const ELEMENT_BYTES: Record<TensorType, number> = { float32: 4, uint8: 1, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8 };

export function elementBytes(type: TensorType): number {
  return ELEMENT_BYTES[type];
}

/** A typed array of `type` over `buffer` (no copy). */
export function typedView(type: TensorType, buffer: ArrayBuffer, byteOffset = 0, length?: number): TensorData {
  switch (type) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, length);
    case 'float16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'int32':
      return new Int32Array(buffer, byteOffset, length);
    case 'float64':
      return new Float64Array(buffer, byteOffset, length);
    case 'bool':
    case 'uint8':
      return new Uint8Array(buffer, byteOffset, length);
  }
}

function typeOfCode(code: number): TensorType {
  const t = CODE_TYPES.get(code);
  if (!t) throw new Error(`onnxruntime tensor element type ${code} is not supported by realign's binding`);
  return t;
}

/** Releases native objects that were not disposed explicitly. */
const finalizer = new FinalizationRegistry<{ release: string; handle: Ptr; dependsOn: unknown }>((held) => {
  try {
    capi().fn[held.release as 'ReleaseValue'](held.handle);
  } catch {
    // nothing to report to at GC time
  }
});

/** Counts of live native objects per kind (for leak tests). */
export const liveObjects: Record<string, number> = {};

/** A native object released exactly once. */
abstract class Native {
  private handleValue: Ptr | null;
  private readonly token = {};

  /**
   * `dependsOn`: what must outlive this object (its allocator, session or base tensor). The registry holds it until
   * this object's release ran, so that objects collected together are still released in a safe order.
   */
  protected constructor(
    handle: Ptr,
    private readonly release: string,
    dependsOn: unknown = null,
  ) {
    if (!handle) throw new Error(`onnxruntime returned a null ${release.replace('Release', '')}`);
    this.handleValue = handle;
    finalizer.register(this, { release, handle, dependsOn }, this.token);
    liveObjects[release] = (liveObjects[release] ?? 0) + 1;
  }

  /** The C pointer; throws after dispose(). */
  get handle(): Ptr {
    if (this.handleValue === null) throw new Error(`${this.constructor.name} used after dispose()`);
    return this.handleValue;
  }

  get disposed(): boolean {
    return this.handleValue === null;
  }

  dispose(): void {
    if (this.handleValue === null) return;
    finalizer.unregister(this.token);
    capi().fn[this.release as 'ReleaseValue'](this.handleValue);
    this.handleValue = null;
    liveObjects[this.release]--;
  }
}

function out(): [Ptr] {
  return [null];
}

/** Log severity for the environment and sessions: 0 verbose … 3 error, 4 fatal. */
const LOG_ERROR = 3;

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

/** Where a tensor's memory lives. */
export class MemoryInfo extends Native {
  private constructor(
    handle: Ptr,
    readonly device: 'cpu' | 'cuda',
  ) {
    super(handle, 'ReleaseMemoryInfo');
  }

  private static cpuInfo: MemoryInfo | null = null;

  /** Host memory (arena allocator, default memory type), shared by all host tensors. */
  static cpu(): MemoryInfo {
    if (!MemoryInfo.cpuInfo) {
      const o = out();
      call('CreateCpuMemoryInfo', 1, 0, o);
      MemoryInfo.cpuInfo = new MemoryInfo(o[0], 'cpu');
    }
    return MemoryInfo.cpuInfo;
  }

  /** CUDA device memory of device `id`. */
  static cuda(id = 0): MemoryInfo {
    const o = out();
    call('CreateMemoryInfo', 'Cuda', 1, id, 0, o);
    return new MemoryInfo(o[0], 'cuda');
  }

  get name(): string {
    const o: [string | null] = [null];
    call('MemoryInfoGetName', this.handle, o);
    return o[0] ?? '';
  }
}

/** Host↔device bytes moved through values (what a step sends in and reads back). */
export class TransferCounter {
  toDevice = 0;
  fromDevice = 0;

  get total(): number {
    return this.toDevice + this.fromDevice;
  }

  reset(): void {
    this.toDevice = 0;
    this.fromDevice = 0;
  }
}

/** The process-wide counter every Value reports to. */
export const transfers = new TransferCounter();

/** A tensor OrtValue. */
export class Value extends Native {
  /** the memory behind a value created over host data: kept alive as long as the value */
  private keep: unknown;

  private constructor(
    handle: Ptr,
    readonly type: TensorType,
    readonly dims: readonly number[],
    readonly device: 'cpu' | 'cuda',
    keep: unknown,
  ) {
    super(handle, 'ReleaseValue', keep);
    this.keep = keep;
  }

  get elements(): number {
    return this.dims.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.elements * ELEMENT_BYTES[this.type];
  }

  /**
   * A tensor over host data without copying; `data` stays referenced by the value (ORT reads and writes it in place).
   * Counted as host→device bytes when `count` is set (it is what a bound input sends).
   */
  static fromHost(type: TensorType, data: TensorData, dims: readonly number[]): Value {
    const elements = dims.reduce((a, b) => a * b, 1);
    if (data.length < elements) throw new Error(`tensor data has ${data.length} elements, dims ${JSON.stringify(dims)} need ${elements}`);
    const o = out();
    const address = elements === 0 ? 0n : addressOf(data);
    call('CreateTensorWithDataAsOrtValue', MemoryInfo.cpu().handle, address, elements * ELEMENT_BYTES[type], BigInt64Array.from(dims, BigInt), dims.length, TYPE_CODES[type], o);
    return new Value(o[0], type, [...dims], 'cpu', data);
  }

  /** A tensor allocated (uninitialized) by `allocator` (host or device memory). */
  static allocate(allocator: Allocator, type: TensorType, dims: readonly number[]): Value {
    const o = out();
    call('CreateTensorAsOrtValue', allocator.handle, BigInt64Array.from(dims, BigInt), dims.length, TYPE_CODES[type], o);
    return new Value(o[0], type, [...dims], allocator.memory.device, allocator);
  }

  /**
   * A tensor over part of another value's memory: `dims` elements from element `offset` of `base` (same device;
   * the view keeps `base` alive). Used for the KV cache rows [start, start + count) of a group's buffer.
   */
  static view(base: Value, offset: number, dims: readonly number[], memory: MemoryInfo): Value {
    const elements = dims.reduce((a, b) => a * b, 1);
    if (offset < 0 || offset + elements > base.elements) throw new Error(`view [${offset}, ${offset + elements}) outside a tensor of ${base.elements} elements`);
    const o = out();
    const address = addressOf(base.dataPointer()) + BigInt(offset * ELEMENT_BYTES[base.type]);
    call('CreateTensorWithDataAsOrtValue', memory.handle, address, elements * ELEMENT_BYTES[base.type], BigInt64Array.from(dims, BigInt), dims.length, TYPE_CODES[base.type], o);
    return new Value(o[0], base.type, [...dims], base.device, base);
  }

  /** Wraps a value ORT created (an output); reads its type and shape. */
  static adopt(handle: Ptr): Value {
    const info = out();
    try {
      call('GetTensorTypeAndShape', handle, info);
    } catch (err) {
      capi().fn.ReleaseValue(handle);
      throw err;
    }
    try {
      const code: [number] = [0];
      call('GetTensorElementType', info[0], code);
      const count: [number] = [0];
      call('GetDimensionsCount', info[0], count);
      const dims = new BigInt64Array(count[0]);
      call('GetDimensions', info[0], dims, count[0]);
      const memory = out();
      call('GetTensorMemoryInfo', handle, memory);
      const name = (() => {
        const n: [string | null] = [null];
        call('MemoryInfoGetName', memory[0], n);
        return n[0] ?? '';
      })();
      return new Value(handle, typeOfCode(code[0]), Array.from(dims, Number), name === 'Cpu' || name === 'CudaPinned' ? 'cpu' : 'cuda', null);
    } finally {
      capi().fn.ReleaseTensorTypeAndShapeInfo(info[0]);
    }
  }

  /** The tensor's data pointer (host or device). */
  dataPointer(): Ptr {
    const o = out();
    call('GetTensorMutableData', this.handle, o);
    return o[0];
  }

  /** A typed array over the value's host memory (no copy); only for host values. */
  hostData(): TensorData {
    if (this.device !== 'cpu') throw new Error('hostData() of a device tensor: copy it to the host first');
    if (this.elements === 0) return typedView(this.type, new ArrayBuffer(0));
    return typedView(this.type, hostView(this.dataPointer(), this.byteLength));
  }

  /** A copy of the value's data on the host, counted as device→host bytes. */
  read(): TensorData {
    const view = this.hostData();
    transfers.fromDevice += view.byteLength;
    return view.slice();
  }

  /** Writes host data into the value (host memory), counted as host→device bytes. */
  write(data: TensorData, elementOffset = 0): void {
    const view = this.hostData();
    (view as Float32Array).set(data as Float32Array, elementOffset);
    transfers.toDevice += data.byteLength;
  }
}

/** An allocator of a session for a memory info (device memory for that session's EP). */
export class Allocator extends Native {
  private constructor(
    handle: Ptr,
    readonly memory: MemoryInfo,
    readonly session: Session | null,
  ) {
    super(handle, 'ReleaseAllocator', session);
  }

  static forSession(session: Session, memory: MemoryInfo): Allocator {
    const o = out();
    call('CreateAllocator', session.handle, memory.handle, o);
    return new Allocator(o[0], memory, session);
  }

  /** ORT's default host allocator (not owned: never released). */
  static defaultHost(): Ptr {
    const o = out();
    call('GetAllocatorWithDefaultOptions', o);
    return o[0];
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

class SessionOptions extends Native {
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
    call('Run', this.handle, runOptions?.handle ?? null, inputNames, inputs.map((v) => v.handle), inputs.length, outputNames, outputNames.length, outPtrs);
    return outPtrs.map((p, i) => outputs[i] ?? Value.adopt(p));
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

function appendCuda(options: SessionOptions, settings: Record<string, string>): void {
  if (!OrtEnvironment.availableProviders().includes('CUDAExecutionProvider')) {
    throw new Error('the loaded ONNX Runtime library has no CUDA execution provider');
  }
  const cuda = new CudaProviderOptions();
  try {
    const all = { device_id: '0', ...settings };
    const keys = Object.keys(all);
    call('UpdateCUDAProviderOptions', cuda.handle, keys, keys.map((k) => all[k as keyof typeof all]), keys.length);
    call('SessionOptionsAppendExecutionProvider_CUDA_V2', options.handle, cuda.handle);
  } catch (err) {
    if (err instanceof OrtError) {
      throw new Error(`CUDA execution provider could not be added (are libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of the same version next to libonnxruntime.so.1, and CUDA's libraries on LD_LIBRARY_PATH?): ${err.ortMessage}`);
    }
    throw err;
  } finally {
    cuda.dispose();
  }
}

/** Options of one run. */
export class RunOptions extends Native {
  constructor(entries: Record<string, string> = {}) {
    const o = out();
    call('CreateRunOptions', o);
    super(o[0], 'ReleaseRunOptions');
    for (const [k, v] of Object.entries(entries)) call('AddRunConfigEntry', this.handle, k, v);
  }

  /** Asks a run in progress (on another thread) to stop. */
  terminate(): void {
    call('RunOptionsSetTerminate', this.handle);
  }
}

/**
 * An IoBinding: inputs and outputs bound to values once, rebound only when they change, run without copying
 * what stays bound (KV caches). Values bound here are kept referenced until they are unbound or cleared.
 */
export class IoBinding extends Native {
  private readonly boundInputs = new Map<string, Value>();
  private readonly boundOutputs = new Map<string, Value | MemoryInfo>();

  constructor(readonly session: Session) {
    const o = out();
    call('CreateIoBinding', session.handle, o);
    super(o[0], 'ReleaseIoBinding', session);
  }

  bindInput(name: string, value: Value): void {
    if (this.boundInputs.get(name) === value) return;
    call('BindInput', this.handle, name, value.handle);
    this.boundInputs.set(name, value);
  }

  bindOutput(name: string, value: Value): void {
    if (this.boundOutputs.get(name) === value) return;
    call('BindOutput', this.handle, name, value.handle);
    this.boundOutputs.set(name, value);
  }

  /**
   * Lets ORT allocate the output on `memory`'s device (read it with outputs()). Call it before every run: after a
   * run the binding holds that run's output and would hand it to the next run as a pre-allocated output.
   */
  bindOutputToDevice(name: string, memory: MemoryInfo): void {
    call('BindOutputToDevice', this.handle, name, memory.handle);
    this.boundOutputs.set(name, memory);
  }

  /** The bound input value of `name`, if any. */
  input(name: string): Value | undefined {
    return this.boundInputs.get(name);
  }

  run(runOptions?: RunOptions): void {
    call('RunWithBinding', this.session.handle, runOptions?.handle ?? null, this.handle);
  }

  /** Names of the bound outputs, in binding order (ORT keeps the first binding's place when a name is rebound). */
  outputNames(): string[] {
    return [...this.boundOutputs.keys()];
  }

  /**
   * The output values after a run, in binding order (new references: the caller disposes them). With `names`, only
   * those outputs are wrapped (in that order); the references to the others are released at once.
   */
  outputs(names?: string[]): Value[] {
    const o = out();
    const count: [number] = [0];
    const allocator = Allocator.defaultHost();
    call('GetBoundOutputValues', this.handle, allocator, o, count);
    if (count[0] === 0) return [];
    const handles = readPointers(o[0], count[0]);
    call('AllocatorFree', allocator, o[0]);
    if (!names) return handles.map((p) => Value.adopt(p));
    const order = this.outputNames();
    const wanted = names.map((n) => order.indexOf(n));
    if (wanted.some((i) => i < 0)) {
      for (const p of handles) capi().fn.ReleaseValue(p);
      throw new Error(`outputs(): not bound: ${names.filter((_, k) => wanted[k] < 0).join(', ')}`);
    }
    handles.forEach((p, i) => {
      if (!wanted.includes(i)) capi().fn.ReleaseValue(p);
    });
    return wanted.map((i) => Value.adopt(handles[i]));
  }

  synchronizeInputs(): void {
    call('SynchronizeBoundInputs', this.handle);
  }

  synchronizeOutputs(): void {
    call('SynchronizeBoundOutputs', this.handle);
  }

  clearInputs(): void {
    capi().fn.ClearBoundInputs(this.handle);
    this.boundInputs.clear();
  }

  clearOutputs(): void {
    capi().fn.ClearBoundOutputs(this.handle);
    this.boundOutputs.clear();
  }

  override dispose(): void {
    if (!this.disposed) {
      this.boundInputs.clear();
      this.boundOutputs.clear();
    }
    super.dispose();
  }
}

/**
 * Copies tensors of equal byte size. Host to host is a plain memory copy; anything else goes through ONNX Runtime's
 * CopyTensors (1.29 implements it for devices whose execution provider registers a data transfer with the
 * environment; ORT_NOT_IMPLEMENTED otherwise, surfaced as an OrtError).
 */
export function copyTensors(src: Value[], dst: Value[]): void {
  if (src.length !== dst.length) throw new Error('copyTensors: as many sources as destinations');
  src.forEach((s, i) => {
    if (s.byteLength !== dst[i].byteLength) throw new Error(`copyTensors: ${s.byteLength} bytes into ${dst[i].byteLength}`);
  });
  const onHost = src.every((s, i) => s.device === 'cpu' && dst[i].device === 'cpu');
  if (onHost) {
    src.forEach((s, i) => new Uint8Array(hostView(dst[i].dataPointer(), dst[i].byteLength)).set(new Uint8Array(hostView(s.dataPointer(), s.byteLength))));
    return;
  }
  call('CopyTensors', OrtEnvironment.get().handle, src.map((v) => v.handle), dst.map((v) => v.handle), null, src.length);
}
