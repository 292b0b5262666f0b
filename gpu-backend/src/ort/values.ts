/**
 * Tensors of realign's ONNX Runtime binding: element types, memory infos, values (over host data, allocated or views),
 * allocators, tensor copies and the host↔device transfer counter.
 */
import { addressOf, call, capi, hostView, type Ptr } from './capi.ts';
import { OrtEnvironment } from './environment.ts';
import { Native, out } from './native.ts';
import type { Session } from './native-session.ts';

/** Element types crossing the boundary (float16 travels as raw bits in a Uint16Array). */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'float64' | 'bool' | 'uint8';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Float64Array | Uint8Array;

const TYPE_CODES: Record<TensorType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
export const CODE_TYPES = new Map<number, TensorType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as TensorType]));
const ELEMENT_BYTES: Record<TensorType, number> = { float32: 4, uint8: 1, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8 };

/** A typed array of `type` over `buffer` (no copy). */
function typedView(type: TensorType, buffer: ArrayBuffer, byteOffset = 0, length?: number): TensorData {
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
    if (data.length < elements)
      throw new Error(`tensor data has ${data.length} elements, dims ${JSON.stringify(dims)} need ${elements}`);
    const o = out();
    const address = elements === 0 ? 0n : addressOf(data);
    call(
      'CreateTensorWithDataAsOrtValue',
      MemoryInfo.cpu().handle,
      address,
      elements * ELEMENT_BYTES[type],
      BigInt64Array.from(dims, BigInt),
      dims.length,
      TYPE_CODES[type],
      o,
    );
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
   * the view keeps `base` alive). Used for the KV cache rows [start, start + count) of a group's buffer. With `as`,
   * the view's elements are of that type (a typed part of a byte buffer; `offset` still counts `base`'s elements).
   */
  static view(base: Value, offset: number, dims: readonly number[], memory: MemoryInfo, as: TensorType = base.type): Value {
    const elements = dims.reduce((a, b) => a * b, 1);
    const start = offset * ELEMENT_BYTES[base.type];
    const bytes = elements * ELEMENT_BYTES[as];
    if (offset < 0 || start + bytes > base.byteLength)
      throw new Error(`view of ${bytes} bytes at byte ${start} outside a tensor of ${base.byteLength} bytes`);
    const o = out();
    const address = addressOf(base.dataPointer()) + BigInt(start);
    call(
      'CreateTensorWithDataAsOrtValue',
      memory.handle,
      address,
      bytes,
      BigInt64Array.from(dims, BigInt),
      dims.length,
      TYPE_CODES[as],
      o,
    );
    return new Value(o[0], as, [...dims], base.device, base);
  }

  /**
   * Wraps a value ORT created (an output); reads its type and shape. `owner` is what allocated its memory (the session,
   * or the IoBinding that holds its session): with an arena, an output's buffer belongs to the session's allocator, so
   * the owner must outlive the value — a value released after its session (both collected together) would free into
   * a destroyed arena.
   */
  static adopt(handle: Ptr, owner: object): Value {
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
      return new Value(
        handle,
        typeOfCode(code[0]),
        Array.from(dims, Number),
        name === 'Cpu' || name === 'CudaPinned' ? 'cpu' : 'cuda',
        owner,
      );
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

  /** The data pointer as a number (host or device address), e.g. to check that a bound buffer did not move. */
  address(): bigint {
    return addressOf(this.dataPointer());
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
    src.forEach((s, i) =>
      new Uint8Array(hostView(dst[i].dataPointer(), dst[i].byteLength)).set(
        new Uint8Array(hostView(s.dataPointer(), s.byteLength)),
      ),
    );
    return;
  }
  call(
    'CopyTensors',
    OrtEnvironment.get().handle,
    src.map((v) => v.handle),
    dst.map((v) => v.handle),
    null,
    src.length,
  );
}
