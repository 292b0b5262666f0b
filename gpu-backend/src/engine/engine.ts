/**
 * The engine as the server sees it: a worker thread running the model (ONNX Runtime's run blocks its
 * thread) and a small async API over messages. Generations stream events; logits jobs resolve once.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type {
  EngineInfo,
  EngineInit,
  EngineStats,
  FromWorker,
  GenerateEvent,
  GenerateJob,
  LogitsJob,
  LogitsResult,
  ToWorker,
} from './protocol.ts';

/** A request the engine refused or failed (queue full, too long, cancelled before running). */
export class EngineRejection extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'EngineRejection';
  }
}

/** A running generation: its events, and a way to stop it. */
export interface Generation {
  events: AsyncIterable<GenerateEvent>;
  cancel(): void;
}

type Pending = { push(ev: GenerateEvent): void; fail(err: Error): void };

/** Main-thread handle of one engine worker. */
export class Engine {
  private nextId = 1;
  private readonly generations = new Map<number, Pending>();
  private readonly logitsJobs = new Map<number, { resolve(r: LogitsResult): void; reject(e: Error): void }>();
  private readonly statsWaiters = new Map<number, { resolve(s: EngineStats): void; reject(e: Error): void }>();
  private latest: EngineStats | null = null;
  private exited: Promise<void>;
  private fatal: Error | null = null;
  /**
   * Set once {@link shutdown} begins: the backend is stopping. Work refused or cut because of it is the backend's
   * state (503 shutting_down, shared/src/failure-scope.ts), not this model's engine failing.
   */
  private stopping: EngineRejection | null = null;
  /** called with the step durations (ms) the worker reports, for metrics */
  onSteps: ((ms: number[], stats: EngineStats) => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.failAll(err));
    // a worker that exits because it was told to stop leaves its queued work refused as shutting down
    worker.once('exit', () => this.failAll(this.fatal ?? this.stopping ?? new Error('the engine worker exited')));
  }

  /** Starts a worker and waits until its model is loaded. */
  static async start(init: EngineInit): Promise<Engine> {
    const here = fileURLToPath(import.meta.url);
    const ts = here.endsWith('.ts');
    const entry = new URL(ts ? './worker-bootstrap.mjs' : './worker-main.js', import.meta.url);
    if (!existsSync(entry)) throw new Error(`engine worker entry not found at ${fileURLToPath(entry)}`);
    const worker = new Worker(entry, { workerData: init });
    const info = await new Promise<EngineInfo>((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === 'ready') resolve(m.info);
        else if (m.type === 'fatal') reject(new Error(`engine failed to start: ${m.message}`));
        else return;
        worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`engine worker exited (${code}) before it was ready`)));
    });
    return new Engine(worker, info);
  }

  /** Submits a generation (ids assigned here). */
  generate(job: Omit<GenerateJob, 'id'>): Generation {
    // a failed or stopping engine refuses at once, before anything is registered that no message would settle
    const refused = this.fatal ?? this.stopping;
    if (refused) throw refused;
    const id = this.nextId++;
    const queue: GenerateEvent[] = [];
    let wake: (() => void) | null = null;
    let failure: Error | null = null;
    let done = false;
    this.generations.set(id, {
      push: (ev) => {
        queue.push(ev);
        wake?.();
      },
      fail: (err) => {
        failure = err;
        wake?.();
      },
    });
    this.send({ type: 'generate', job: { ...job, id } });
    const forget = () => this.generations.delete(id);
    // cancelling is fire-and-forget: once the worker is gone there is nothing left to stop (and callers such as
    // abort listeners must not throw)
    const cancel = () => {
      if (!this.fatal) this.send({ type: 'cancel', id });
    };
    const events: AsyncIterable<GenerateEvent> = {
      async *[Symbol.asyncIterator]() {
        try {
          while (!done) {
            while (queue.length === 0 && !failure) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (queue.length === 0 && failure) throw failure;
            const ev = queue.shift()!;
            if (ev.finish) done = true;
            yield ev;
          }
        } finally {
          forget();
          if (!done) cancel();
        }
      },
    };
    return { events, cancel };
  }

  /** Runs a logits job. */
  logits(job: Omit<LogitsJob, 'id'>): Promise<LogitsResult> {
    const refused = this.fatal ?? this.stopping;
    if (refused) return Promise.reject(refused);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.logitsJobs.set(id, { resolve, reject });
      this.send({ type: 'logits', job: { ...job, id } });
    });
  }

  /** The stats the worker sent last (after its latest step). */
  get stats(): EngineStats | null {
    return this.latest;
  }

  /** Asks the worker for fresh stats; rejects with the engine's failure once its worker can no longer answer. */
  refreshStats(): Promise<EngineStats> {
    if (this.fatal) return Promise.reject(this.fatal);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.statsWaiters.set(id, { resolve, reject });
      this.send({ type: 'stats', id });
    });
  }

  /**
   * Why this engine can take no more work — its worker reported a fatal error, raised one or exited — or null while
   * it runs. Once set it stays set: a worker is never restarted.
   */
  get failure(): string | null {
    return this.fatal?.message ?? null;
  }

  /**
   * Stops the worker: running sequences end as cancelled (their final events carry the `shutting_down` error), work
   * still queued and new work are refused with an {@link EngineRejection} `shutting_down`. An engine that already
   * failed has nothing left to stop (its worker cannot be messaged): resolves once the thread is surely gone.
   */
  async shutdown(): Promise<void> {
    this.stopping ??= new EngineRejection('the server is shutting down; retry on another backend', 'shutting_down');
    if (this.fatal) {
      // a worker that reported a fatal error may still be winding down; one that exited resolves at once
      await this.worker.terminate();
      await this.exited;
      return;
    }
    this.send({ type: 'shutdown' });
    const timeout = setTimeout(() => void this.worker.terminate(), 10_000);
    await this.exited;
    clearTimeout(timeout);
  }

  private send(m: ToWorker): void {
    if (this.fatal) throw this.fatal;
    this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'events':
        this.latest = m.stats;
        for (const ev of m.events) {
          // the scheduler ends its running sequences as cancelled when it stops: say that it was the shutdown
          if (ev.finish === 'cancelled' && this.stopping && !ev.error)
            ev.error = { message: this.stopping.message, code: this.stopping.code };
          this.generations.get(ev.id)?.push(ev);
        }
        // an observer that throws (metrics) must not keep a step's events from their requests
        try {
          this.onSteps?.(m.stepMs, m.stats);
        } catch {
          // the metrics of this step are lost; the generations are not
        }
        return;
      case 'logits-result':
        this.logitsJobs.get(m.id)?.resolve(m.result);
        this.logitsJobs.delete(m.id);
        return;
      case 'rejected': {
        const err = new EngineRejection(m.error.message, m.error.code);
        this.generations.get(m.id)?.fail(err);
        this.logitsJobs.get(m.id)?.reject(err);
        this.logitsJobs.delete(m.id);
        return;
      }
      case 'stats':
        this.latest = m.stats;
        this.statsWaiters.get(m.id)?.resolve(m.stats);
        this.statsWaiters.delete(m.id);
        return;
      case 'fatal':
        this.fatal = new Error(`engine failed: ${m.message}`);
        this.failAll(this.fatal);
        return;
      case 'ready':
        return;
    }
  }

  /**
   * Settles everything still waiting on the worker — generations, logits jobs, stats requests — with the engine's
   * failure: no answer can come once the worker failed or exited, and a waiter left out would hang its request.
   */
  private failAll(err: Error): void {
    this.fatal ??= err;
    for (const g of this.generations.values()) g.fail(err);
    for (const j of this.logitsJobs.values()) j.reject(err);
    this.logitsJobs.clear();
    for (const w of this.statsWaiters.values()) w.reject(err);
    this.statsWaiters.clear();
  }
}
