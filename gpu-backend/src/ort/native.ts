/**
 * The release registry of realign's ONNX Runtime binding: the base of every object over a C API handle (capi.ts),
 * released exactly once by dispose() or, as a safety net, when it is garbage collected (FinalizationRegistry).
 */
import { capi, type Ptr } from './capi.ts';

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
export abstract class Native {
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

/** An out-parameter slot for a handle the C API returns. */
export function out(): [Ptr] {
  return [null];
}
