/**
 * Copies between device tensors without a host round trip, for the KV caches' row moves where ONNX Runtime's
 * CopyTensors has no data transfer for the execution provider (ORT 1.29 implements it only for EPs that register
 * one with the environment): a one-node graph `dst = Identity(src)` over flat views, run through an IoBinding with
 * both ends bound to the caller's memory, so the EP's own kernel copies device to device.
 */
import { Graph } from '../graph/ir.ts';
import { encodeOnnxModel } from '../graph/onnx-writer.ts';
import { copyTensors, OrtError, Value, type IoBinding, type ModelSession } from '../ort/session.ts';

/** Copies whole tensors of equal size inside one session's device memory. */
export class DeviceCopier {
  private copyGraph: { session: ModelSession; binding: IoBinding } | null = null;
  /** set once CopyTensors has answered ORT_NOT_IMPLEMENTED for this memory */
  private useGraph: boolean;

  constructor(
    private readonly session: ModelSession,
    private readonly float16: boolean,
    forceGraph = false,
  ) {
    this.useGraph = forceGraph;
  }

  /** Copies `src[i]` into `dst[i]` (equal byte sizes; flat views are made here). */
  copy(src: Value[], dst: Value[]): void {
    if (!this.useGraph) {
      try {
        copyTensors(src, dst);
        return;
      } catch (err) {
        if (!(err instanceof OrtError) || err.codeName !== 'ORT_NOT_IMPLEMENTED') throw err;
        this.useGraph = true;
      }
    }
    const g = this.graph();
    src.forEach((s, i) => {
      const from = Value.view(s, 0, [s.elements], this.session.memory);
      const to = Value.view(dst[i], 0, [dst[i].elements], this.session.memory);
      try {
        g.binding.bindInput('src', from);
        g.binding.bindOutput('dst', to);
        g.binding.run();
      } finally {
        g.binding.clearInputs();
        g.binding.clearOutputs();
        from.dispose();
        to.dispose();
      }
    });
  }

  release(): void {
    if (!this.copyGraph) return;
    this.copyGraph.binding.dispose();
    void this.copyGraph.session.release();
    this.copyGraph = null;
  }

  private graph(): { session: ModelSession; binding: IoBinding } {
    if (!this.copyGraph) {
      const type = this.float16 ? 'float16' : 'float32';
      const g = new Graph('realign-device-copy');
      const src = g.input('src', type, ['N'], 'flat source');
      g.output(
        g.op1('Identity', [src], {}, '/copy/Identity'),
        'dst',
        type,
        ['N'],
        "flat destination (bound to the caller's memory)",
      );
      const session = this.session.fork(encodeOnnxModel(g));
      this.copyGraph = { session, binding: session.binding() };
    }
    return this.copyGraph;
  }
}
