/**
 * Run options and IoBinding of realign's ONNX Runtime binding: values bound to a session's inputs and outputs once,
 * run without copying what stays bound.
 */
import { call, capi, readPointers } from './capi.ts';
import { Native, out } from './native.ts';
import type { Session } from './native-session.ts';
import { Allocator, MemoryInfo, Value } from './values.ts';

/**
 * The run config key of the CUDA graph a run captures or replays (onnxruntime_run_options_config_keys.h,
 * kOrtRunOptionsConfigCudaGraphAnnotation): an integer; −1 = neither capture nor replay in this run; 0 is ORT's
 * default graph and not to be set by callers.
 */
export const GPU_GRAPH_ID = 'gpu_graph_id';

/** Options of one run. */
export class RunOptions extends Native {
  /** the config entries given (as passed to AddRunConfigEntry) */
  readonly entries: Readonly<Record<string, string>>;

  constructor(entries: Record<string, string> = {}) {
    const o = out();
    call('CreateRunOptions', o);
    super(o[0], 'ReleaseRunOptions');
    for (const [k, v] of Object.entries(entries)) call('AddRunConfigEntry', this.handle, k, v);
    this.entries = { ...entries };
  }

  /** Run options that capture (first runs) and then replay the CUDA graph `id` (≥ 1; −1: no graph for this run). */
  static graph(id: number): RunOptions {
    if (!Number.isInteger(id) || (id < 1 && id !== -1)) throw new Error(`gpu_graph_id ${id}: an integer ≥ 1, or −1`);
    return new RunOptions({ [GPU_GRAPH_ID]: String(id) });
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
    if (!names) return handles.map((p) => Value.adopt(p, this));
    const order = this.outputNames();
    const wanted = names.map((n) => order.indexOf(n));
    if (wanted.some((i) => i < 0)) {
      for (const p of handles) capi().fn.ReleaseValue(p);
      throw new Error(`outputs(): not bound: ${names.filter((_, k) => wanted[k] < 0).join(', ')}`);
    }
    handles.forEach((p, i) => {
      if (!wanted.includes(i)) capi().fn.ReleaseValue(p);
    });
    return wanted.map((i) => Value.adopt(handles[i], this));
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
