/**
 * realign's ONNX Runtime binding: objects over the C API (capi.ts) that release what they own exactly once,
 * either by an explicit dispose() or, as a safety net, when they are garbage collected (FinalizationRegistry).
 *
 *   OrtEnvironment (one per thread) ─► SessionOptions ─► Session ─► IoBinding ─► RunWithBinding
 *                                       (threads, EPs)     │           ▲
 *   MemoryInfo (cpu | cuda) ─► Allocator (per session) ─► Value (tensor over host memory or allocator-owned)
 *
 * Host↔device traffic through bound values is counted in `transfers` (see TransferCounter).
 *
 * This module re-exports the parts: native.ts (release registry), environment.ts (environment, session options,
 * providers), values.ts (tensors, memory infos, allocators), native-session.ts (Session), io-binding.ts (IoBinding).
 */
export { OrtError } from './capi.ts';
export { OrtEnvironment, type SessionConfig } from './environment.ts';
export { GPU_GRAPH_ID, RunOptions, IoBinding } from './io-binding.ts';
export { liveObjects } from './native.ts';
export { Session, type IoInfo } from './native-session.ts';
export {
  Allocator,
  copyTensors,
  MemoryInfo,
  TransferCounter,
  transfers,
  Value,
  type TensorData,
  type TensorType,
} from './values.ts';
