/**
 * The old path: a session through onnxruntime-node's JavaScript API, kept only so that the benchmark can compare
 * realign's own binding (session.ts) with it side by side. The engine, training and tests use session.ts.
 */
import * as ort from 'onnxruntime-node';
import type { HostTensor, SessionOptions, TensorType } from './session.ts';

/** A session over onnxruntime-node's JS API with the server's settings (see session.ts sessionConfig). */
export class JsApiSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly device: SessionOptions['device'],
  ) {}

  /** Loads a model file (its external data is found next to it). */
  static async open(modelPath: string, opts: SessionOptions): Promise<JsApiSession> {
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: opts.device === 'cuda' ? [{ name: 'cuda', deviceId: 0 }, 'cpu'] : ['cpu'],
      graphOptimizationLevel: 'all',
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } },
    });
    return new JsApiSession(session, opts.device);
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
  async run(
    feeds: Record<string, HostTensor>,
    fetch: string[],
    inPlace: Record<string, HostTensor> = {},
  ): Promise<Record<string, HostTensor>> {
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
