/**
 * A second thread for the host sampler's costly part. A decode step's sampled rows (top_p, or the full softmax)
 * each need one pass over the vocabulary with a weight per token (draw-bounded.ts: ~5 ns per token, 0.17 ms per
 * row at V = 32000), while ONNX Runtime's threads wait for the next run: on two cores one of them is idle. Here the
 * engine thread prepares each row (penalties, logit_bias, maximum: state of the sequence) into shared memory and
 * publishes it; this thread and the engine thread both claim published rows and draw them with the same pure
 * function, so a row's token is the same whichever thread draws it (and the same as `SequenceSampler.next`).
 *
 * Nothing waits long on the draw thread: when it is busy elsewhere or not started yet, the engine thread claims every
 * row itself, and a row the draw thread holds but has not finished within about one row's time (say it was
 * descheduled on a loaded machine) is drawn again by the engine thread; whichever finishes first writes the token
 * (compare-and-swap on a slot tagged with the round, so a late write cannot land in another round).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { drawBounded, UNDECIDED, type DrawJob } from './draw-bounded.ts';
import {
  claimBase,
  claimRow,
  pendingTag,
  CLAIM,
  CONTROL_SLOTS,
  COUNT,
  DONE,
  GEN,
  PARAMS,
  READY,
  ROW_MASK,
  STOP,
  VERSION,
  VOCAB,
  type DrawBuffers,
} from './draw-protocol.ts';

/** What a round did, for the engine's statistics and tests. */
export interface DrawRoundStats {
  rounds: number;
  rows: number;
  /** rows the draw thread drew */
  helperRows: number;
  /** rows the draw thread had claimed but not finished in time, drawn again on the calling thread */
  stolenRows: number;
  /** the thread failed or exited */
  broken: boolean;
}

let shared: DrawThread | null = null;

export class DrawThread {
  /**
   * This thread's draw thread, started on first use and kept (unref'd) for the life of the thread: schedulers of one
   * thread take turns (a round is synchronous), so they share it rather than each starting one. A given-up thread is
   * replaced.
   */
  static shared(): DrawThread {
    if (!shared?.usable) shared = new DrawThread();
    return shared;
  }

  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private gen = 0;
  private capacityRows = 0;
  private vocab = 0;
  private slab: Float32Array = new Float32Array(0);
  private params: Float64Array = new Float64Array(0);
  private results: Int32Array = new Int32Array(0);
  private broken = false;
  private readonly counts = { rounds: 0, rows: 0, helperRows: 0, stolenRows: 0 };

  /** Starts the thread; rounds can run at once (the thread joins them once it is up). */
  /** `slowRowMs` (tests only): the draw thread sleeps this long before each row it draws, as a descheduled one would. */
  constructor({ slowRowMs = 0 }: { slowRowMs?: number } = {}) {
    const ts = fileURLToPath(import.meta.url).endsWith('.ts');
    const entry = new URL(ts ? './draw-worker-bootstrap.mjs' : './draw-worker.js', import.meta.url);
    if (!existsSync(entry)) throw new Error(`draw worker entry not found at ${fileURLToPath(entry)}`);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(entry, {
      workerData: { control: this.control.buffer, port: port2, slowRowMs },
      transferList: [port2],
    });
    this.worker.unref();
    this.port.unref();
    this.worker.on('error', () => (this.broken = true));
    this.worker.once('exit', () => (this.broken = true));
  }

  /** False once the thread failed or exited: then `round` still works, on the calling thread alone. */
  get usable(): boolean {
    return !this.broken;
  }

  get stats(): DrawRoundStats {
    return { ...this.counts, broken: this.broken };
  }

  /**
   * Draws `n` rows of length `vocab`: `prepare(j, into)` writes row j's processed logits into `into` and returns its
   * job (null: a row that ended while being prepared, nothing to draw); `meanwhile` runs after every row is
   * published, while the draw thread works. Returns each row's drawBounded token (UNDECIDED: take the exact draw).
   */
  round(
    n: number,
    vocab: number,
    prepare: (row: number, into: Float32Array) => DrawJob | null,
    meanwhile?: () => void,
  ): Int32Array {
    if (n > ROW_MASK) throw new RangeError(`a draw round holds at most ${ROW_MASK} rows`);
    this.ensure(n, vocab);
    const c = this.control;
    const gen = ++this.gen;
    const pending = pendingTag(gen);
    this.results.fill(pending, 0, n);
    Atomics.store(c, COUNT, n);
    Atomics.store(c, VOCAB, vocab);
    Atomics.store(c, READY, 0);
    Atomics.store(c, DONE, 0);
    Atomics.store(c, CLAIM, claimBase(gen));
    Atomics.store(c, GEN, gen);
    if (!this.broken) Atomics.notify(c, GEN);
    const jobs: (DrawJob | null)[] = [];
    for (let j = 0; j < n; j++) {
      const job = prepare(j, this.slab.subarray(j * vocab, (j + 1) * vocab));
      jobs.push(job);
      const p = j * PARAMS;
      this.params[p] = job?.max ?? 0;
      this.params[p + 1] = job ? job.invT : NaN;
      this.params[p + 2] = job?.topP ?? 1;
      this.params[p + 3] = job?.minP ?? 0;
      this.params[p + 4] = job?.u ?? 0;
      Atomics.store(c, READY, j + 1);
      Atomics.notify(c, READY);
    }
    meanwhile?.();
    let mine = 0;
    const t0 = performance.now();
    for (let row = claimRow(c, gen, n); row >= 0; row = claimRow(c, gen, n)) {
      if (this.settle(row, pending, jobs[row])) mine++;
    }
    const rowMs = mine > 0 ? (performance.now() - t0) / mine : 0.2;
    mine += this.finishHeld(n, pending, jobs, rowMs);
    this.counts.rounds++;
    this.counts.rows += n;
    this.counts.helperRows += n - mine;
    return this.results.slice(0, n);
  }

  /** Draws `row` here and writes its token unless the draw thread wrote it first; whether this thread's stood. */
  private settle(row: number, pending: number, job: DrawJob | null): boolean {
    const token = job ? drawBounded(job) : UNDECIDED;
    return Atomics.compareExchange(this.results, row, pending, token) === pending;
  }

  /**
   * The rows the draw thread claimed: waits for them about one row's time (`rowMs`, as this thread took) at a time,
   * and draws the oldest unfinished one here when it has not come; returns how many this thread wrote.
   */
  private finishHeld(n: number, pending: number, jobs: (DrawJob | null)[], rowMs: number): number {
    const c = this.control;
    let mine = 0;
    for (let row = 0; row < n; row++) {
      if (Atomics.load(this.results, row) !== pending) continue;
      const done = Atomics.load(c, DONE);
      if (!this.broken) Atomics.wait(c, DONE, done, Math.max(0.05, rowMs));
      if (Atomics.load(this.results, row) !== pending) continue;
      if (this.settle(row, pending, jobs[row])) {
        mine++;
        this.counts.stolenRows++;
      }
    }
    return mine;
  }

  /** Asks the thread to exit (it is unref'd: it never holds the process open). */
  close(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GEN, 1);
    Atomics.notify(this.control, GEN);
    this.port.close();
  }

  /** Buffers for n rows of `vocab` (replaced, and sent to the thread, when they are too small or V changes). */
  private ensure(n: number, vocab: number): void {
    if (n <= this.capacityRows && vocab === this.vocab) return;
    const rows = Math.max(n, this.capacityRows, 8);
    const version = Atomics.load(this.control, VERSION) + 1;
    const b: DrawBuffers = {
      version,
      slab: new SharedArrayBuffer(rows * vocab * 4),
      params: new SharedArrayBuffer(rows * PARAMS * 8),
      results: new SharedArrayBuffer(rows * 4),
    };
    this.slab = new Float32Array(b.slab);
    this.params = new Float64Array(b.params);
    this.results = new Int32Array(b.results);
    this.capacityRows = rows;
    this.vocab = vocab;
    if (!this.broken) this.port.postMessage(b);
    Atomics.store(this.control, VERSION, version);
  }
}
