/**
 * The release registry of realign's ONNX Runtime binding: the base of every object over a C API handle (capi.ts),
 * released exactly once by dispose() or, as a safety net, when it is garbage collected (FinalizationRegistry).
 *
 * An object may depend on another (a tensor on the allocator or session that owns its memory, a view on its base
 * tensor, an IoBinding on its session). A dependency is released only after every dependent was: dispose() of an
 * object that still has live dependents makes it unusable at once but defers the C release until the last dependent
 * is released (by its own dispose() or by the garbage collector). Without that, releasing a session or allocator
 * before a tensor it allocated makes the tensor's later release call into freed memory.
 */
import { capi, type Ptr } from './capi.ts';

interface Held {
  release: string;
  handle: Ptr;
  /** what this object depends on: a Native (released after this one) or any other value kept alive (host memory) */
  dependsOn: unknown;
}

/** Releases native objects that were not disposed explicitly, then lets their dependency go. */
const finalizer = new FinalizationRegistry<Held>((held) => {
  try {
    capi().fn[held.release as 'ReleaseValue'](held.handle);
  } catch {
    // nothing to report to at GC time
  }
  liveObjects[held.release]--;
  if (held.dependsOn instanceof Native) dependentReleased(held.dependsOn);
});

/** Counts of live native objects per kind (for leak tests); an object counts until its C release ran. */
export const liveObjects: Record<string, number> = {};

/** Live dependents per object, and the C handles whose release waits for them (dispose() was called). */
const dependents = new WeakMap<Native, number>();
const waiting = new WeakMap<Native, Held>();

function releaseNow(held: Held): void {
  capi().fn[held.release as 'ReleaseValue'](held.handle);
  liveObjects[held.release]--;
  if (held.dependsOn instanceof Native) dependentReleased(held.dependsOn);
}

function dependentReleased(dep: Native): void {
  const left = (dependents.get(dep) ?? 1) - 1;
  dependents.set(dep, left);
  const held = waiting.get(dep);
  if (left === 0 && held) {
    waiting.delete(dep);
    releaseNow(held);
  }
}

/** A native object released exactly once, after the objects that depend on it. */
export abstract class Native {
  private handleValue: Ptr | null;
  private readonly token = {};
  private readonly dependsOn: unknown;

  /**
   * `dependsOn`: what must outlive this object (its allocator, session or base tensor, or the host memory it views).
   * A Native dependency is released only after this object; anything else is kept alive as long as this object.
   */
  protected constructor(
    handle: Ptr,
    private readonly release: string,
    dependsOn: unknown = null,
  ) {
    if (!handle) throw new Error(`onnxruntime returned a null ${release.replace('Release', '')}`);
    this.handleValue = handle;
    this.dependsOn = dependsOn;
    if (dependsOn instanceof Native) {
      if (dependsOn.disposed) throw new Error(`${dependsOn.constructor.name} used after dispose()`);
      dependents.set(dependsOn, (dependents.get(dependsOn) ?? 0) + 1);
    }
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

  /** Ends this object's use; its C release runs now, or once the last object depending on it was released. */
  dispose(): void {
    if (this.handleValue === null) return;
    const held: Held = { release: this.release, handle: this.handleValue, dependsOn: this.dependsOn };
    this.handleValue = null;
    finalizer.unregister(this.token);
    if ((dependents.get(this) ?? 0) > 0) waiting.set(this, held);
    else releaseNow(held);
  }
}

/** An out-parameter slot for a handle the C API returns. */
export function out(): [Ptr] {
  return [null];
}
