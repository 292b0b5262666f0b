/**
 * ONNX Runtime's C API, reached through koffi: onnxruntime-node 1.29.0's own `libonnxruntime.so.1` is loaded,
 * `OrtGetApiBase()->GetApi(ORT_API_VERSION)` returns the `OrtApi` function table, and each function used here is
 * decoded from its slot.
 *
 * The slot numbers are the order of the members of `struct OrtApi` in the public header
 * `include/onnxruntime/core/session/onnxruntime_c_api.h` of onnxruntime 1.29 (ORT_API_VERSION 29), counted from 0.
 * The table is append-only across versions, so asking for version 29 of a 1.29 library gives exactly this layout.
 * Only ort/ uses this module; ort/binding.ts wraps it in objects that release what they own.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import koffi from 'koffi';

/** The C API version these slots belong to. */
export const ORT_API_VERSION = 29;

/** An opaque C pointer (a koffi external). */
export type Ptr = unknown;

/** `OrtErrorCode` names, by value. */
const ERROR_CODES = [
  'ORT_OK',
  'ORT_FAIL',
  'ORT_INVALID_ARGUMENT',
  'ORT_NO_SUCHFILE',
  'ORT_NO_MODEL',
  'ORT_ENGINE_ERROR',
  'ORT_RUNTIME_EXCEPTION',
  'ORT_INVALID_PROTOBUF',
  'ORT_MODEL_LOADED',
  'ORT_NOT_IMPLEMENTED',
  'ORT_INVALID_GRAPH',
  'ORT_EP_FAIL',
  'ORT_MODEL_LOAD_CANCELED',
  'ORT_MODEL_REQUIRES_COMPILATION',
  'ORT_NOT_FOUND',
];

/** An error reported by ONNX Runtime through an `OrtStatus`. */
export class OrtError extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
    readonly ortMessage: string,
  ) {
    super(`onnxruntime ${call}: ${ortMessage} (${ERROR_CODES[code] ?? `code ${code}`})`);
    this.name = 'OrtError';
  }

  get codeName(): string {
    return ERROR_CODES[this.code] ?? `code ${this.code}`;
  }
}

/**
 * Functions used, as [slot in OrtApi, C signature]. Every `OrtStatus*`-returning function is declared as returning
 * `void *` (null on success); handles are `void *`; pointers that need arithmetic are `intptr_t`.
 */
const SLOTS = {
  CreateStatus: [0, 'void * f(int code, const char *msg)'],
  GetErrorCode: [1, 'int f(void *status)'],
  GetErrorMessage: [2, 'const char * f(void *status)'],
  CreateEnv: [3, 'void * f(int level, const char *logid, _Out_ void **out)'],
  CreateSession: [7, 'void * f(void *env, const char *path, void *options, _Out_ void **out)'],
  CreateSessionFromArray: [8, 'void * f(void *env, void *data, size_t bytes, void *options, _Out_ void **out)'],
  Run: [
    9,
    'void * f(void *session, void *runOptions, const char **inputNames, void **inputs, size_t inputCount, const char **outputNames, size_t outputCount, _Inout_ void **outputs)',
  ],
  CreateSessionOptions: [10, 'void * f(_Out_ void **out)'],
  SetSessionExecutionMode: [13, 'void * f(void *options, int mode)'],
  EnableMemPattern: [16, 'void * f(void *options)'],
  DisableMemPattern: [17, 'void * f(void *options)'],
  EnableCpuMemArena: [18, 'void * f(void *options)'],
  DisableCpuMemArena: [19, 'void * f(void *options)'],
  SetSessionLogSeverityLevel: [22, 'void * f(void *options, int level)'],
  SetSessionGraphOptimizationLevel: [23, 'void * f(void *options, int level)'],
  SetIntraOpNumThreads: [24, 'void * f(void *options, int n)'],
  SetInterOpNumThreads: [25, 'void * f(void *options, int n)'],
  SessionGetInputCount: [30, 'void * f(void *session, _Out_ size_t *out)'],
  SessionGetOutputCount: [31, 'void * f(void *session, _Out_ size_t *out)'],
  SessionGetInputTypeInfo: [33, 'void * f(void *session, size_t index, _Out_ void **out)'],
  SessionGetOutputTypeInfo: [34, 'void * f(void *session, size_t index, _Out_ void **out)'],
  SessionGetInputName: [36, 'void * f(void *session, size_t index, void *allocator, _Out_ void **out)'],
  SessionGetOutputName: [37, 'void * f(void *session, size_t index, void *allocator, _Out_ void **out)'],
  CreateRunOptions: [39, 'void * f(_Out_ void **out)'],
  RunOptionsSetTerminate: [46, 'void * f(void *runOptions)'],
  CreateTensorAsOrtValue: [48, 'void * f(void *allocator, void *shape, size_t shapeLen, int type, _Out_ void **out)'],
  CreateTensorWithDataAsOrtValue: [
    49,
    'void * f(void *info, intptr_t data, size_t bytes, void *shape, size_t shapeLen, int type, _Out_ void **out)',
  ],
  GetTensorMutableData: [51, 'void * f(void *value, _Out_ void **out)'],
  CastTypeInfoToTensorInfo: [55, 'void * f(void *typeInfo, _Out_ void **out)'],
  GetTensorElementType: [60, 'void * f(void *info, _Out_ int *out)'],
  GetDimensionsCount: [61, 'void * f(void *info, _Out_ size_t *out)'],
  GetDimensions: [62, 'void * f(void *info, void *dims, size_t count)'],
  GetTensorTypeAndShape: [65, 'void * f(void *value, _Out_ void **out)'],
  CreateMemoryInfo: [68, 'void * f(const char *name, int allocatorType, int deviceId, int memType, _Out_ void **out)'],
  CreateCpuMemoryInfo: [69, 'void * f(int allocatorType, int memType, _Out_ void **out)'],
  MemoryInfoGetName: [71, 'void * f(void *info, _Out_ const char **out)'],
  AllocatorFree: [76, 'void * f(void *allocator, void *p)'],
  GetAllocatorWithDefaultOptions: [78, 'void * f(_Out_ void **out)'],
  ReleaseEnv: [92, 'void f(void *p)'],
  ReleaseStatus: [93, 'void f(void *p)'],
  ReleaseMemoryInfo: [94, 'void f(void *p)'],
  ReleaseSession: [95, 'void f(void *p)'],
  ReleaseValue: [96, 'void f(void *p)'],
  ReleaseRunOptions: [97, 'void f(void *p)'],
  ReleaseTypeInfo: [98, 'void f(void *p)'],
  ReleaseTensorTypeAndShapeInfo: [99, 'void f(void *p)'],
  ReleaseSessionOptions: [100, 'void f(void *p)'],
  GetAvailableProviders: [125, 'void * f(_Out_ void **out, _Out_ int *count)'],
  ReleaseAvailableProviders: [126, 'void * f(void *p, int count)'],
  AddSessionConfigEntry: [130, 'void * f(void *options, const char *key, const char *value)'],
  CreateAllocator: [131, 'void * f(void *session, void *memInfo, _Out_ void **out)'],
  ReleaseAllocator: [132, 'void f(void *p)'],
  RunWithBinding: [133, 'void * f(void *session, void *runOptions, void *binding)'],
  CreateIoBinding: [134, 'void * f(void *session, _Out_ void **out)'],
  ReleaseIoBinding: [135, 'void f(void *p)'],
  BindInput: [136, 'void * f(void *binding, const char *name, void *value)'],
  BindOutput: [137, 'void * f(void *binding, const char *name, void *value)'],
  BindOutputToDevice: [138, 'void * f(void *binding, const char *name, void *memInfo)'],
  GetBoundOutputValues: [140, 'void * f(void *binding, void *allocator, _Out_ void **out, _Out_ size_t *count)'],
  ClearBoundInputs: [141, 'void f(void *binding)'],
  ClearBoundOutputs: [142, 'void f(void *binding)'],
  AddRunConfigEntry: [165, 'void * f(void *runOptions, const char *key, const char *value)'],
  GetTensorMemoryInfo: [194, 'void * f(void *value, _Out_ void **out)'],
  SynchronizeBoundInputs: [202, 'void * f(void *binding)'],
  SynchronizeBoundOutputs: [203, 'void * f(void *binding)'],
  SessionOptionsAppendExecutionProvider_CUDA_V2: [204, 'void * f(void *options, void *cudaOptions)'],
  CreateCUDAProviderOptions: [205, 'void * f(_Out_ void **out)'],
  UpdateCUDAProviderOptions: [206, 'void * f(void *cudaOptions, const char **keys, const char **values, size_t count)'],
  ReleaseCUDAProviderOptions: [208, 'void f(void *p)'],
  GetTensorSizeInBytes: [318, 'void * f(void *value, _Out_ size_t *out)'],
  CopyTensors: [386, 'void * f(void *env, void **src, void **dst, void *stream, size_t count)'],
} as const;

type SlotName = keyof typeof SLOTS;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type CFunction = (...args: any[]) => any;

/** The decoded function table, library version and helpers. */
export interface CApi {
  fn: Record<SlotName, CFunction>;
  version: string;
  libraryPath: string;
  /** Throws an OrtError for a non-null status (releasing it). */
  check(status: Ptr, call: string): void;
}

let loaded: CApi | null = null;

/** Where onnxruntime-node keeps its native libraries for this platform. */
export function onnxruntimeLibDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

function libraryFile(): string {
  const dir = onnxruntimeLibDir();
  const name =
    process.platform === 'win32'
      ? 'onnxruntime.dll'
      : process.platform === 'darwin'
        ? 'libonnxruntime.1.dylib'
        : 'libonnxruntime.so.1';
  const file = join(dir, name);
  if (!existsSync(file))
    throw new Error(
      `ONNX Runtime library not found at ${file} (is onnxruntime-node installed for ${process.platform}-${process.arch}?)`,
    );
  return file;
}

/** Loads the library and the function table once per thread. */
export function capi(): CApi {
  if (loaded) return loaded;
  const libraryPath = libraryFile();
  const lib = koffi.load(libraryPath);
  const base = lib.func('void * OrtGetApiBase()')();
  const [getApiPtr, versionPtr] = koffi.decode(base, 'void *', 2) as Ptr[];
  const version = koffi.decode(versionPtr, koffi.proto('const char * realign_OrtGetVersionString()'))() as string;
  const api = koffi.decode(getApiPtr, koffi.proto('void * realign_OrtGetApi(uint32_t version)'))(ORT_API_VERSION);
  if (!api) throw new Error(`ONNX Runtime ${version} at ${libraryPath} does not provide C API version ${ORT_API_VERSION}`);
  const maxSlot = Math.max(...Object.values(SLOTS).map(([i]) => i));
  const table = koffi.decode(api, 'void *', maxSlot + 1) as Ptr[];
  const fn = {} as Record<SlotName, CFunction>;
  for (const [name, [slot, sig]] of Object.entries(SLOTS) as [SlotName, (typeof SLOTS)[SlotName]][]) {
    fn[name] = koffi.decode(table[slot], koffi.proto(sig.replace(' f(', ` realign_Ort${name}(`))) as CFunction;
  }
  const check = (status: Ptr, call: string): void => {
    if (!status) return;
    const code = fn.GetErrorCode(status) as number;
    const message = fn.GetErrorMessage(status) as string;
    fn.ReleaseStatus(status);
    throw new OrtError(call, code, message);
  };
  loaded = { fn, version, libraryPath, check };
  return loaded;
}

/** Calls a status-returning function and throws its error. */
export function call(name: SlotName, ...args: unknown[]): void {
  const api = capi();
  api.check(api.fn[name](...args), name);
}

/** Numeric address of a pointer (for offsets). */
export function addressOf(p: Ptr): bigint {
  return koffi.address(p);
}

/** An ArrayBuffer over `bytes` bytes of host memory at `p` (no copy; valid while the owner lives). */
export function hostView(p: Ptr, bytes: number): ArrayBuffer {
  return bytes === 0 ? new ArrayBuffer(0) : koffi.view(p, bytes);
}

/** Reads `count` pointers from a C array. */
export function readPointers(p: Ptr, count: number): Ptr[] {
  return count === 0 ? [] : (koffi.decode(p, 'void *', count) as Ptr[]);
}

/** Reads the NUL-terminated string at `p`. */
export function readString(p: Ptr): string {
  return koffi.decode(p, 'char', -1) as string;
}
