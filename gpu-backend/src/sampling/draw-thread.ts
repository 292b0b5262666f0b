/**
 * A second thread for the host sampler's costly part. A decode step's sampled rows (top_p, or the full softmax)
 * each need one pass over the vocabulary with a weight per token (draw-bounded.ts: ~5 ns per token, 0.17 ms per
 * row at V = 32000), while ONNX Runtime's threads wait for the next run: on two cores one of them is idle. Here the
 * engine thread prepares each row (penalties, logit_bias, maximum: state of the sequence) into shared memory and
 * publishes it; this thread and the engine thread both claim published rows and draw them with the same pure
 * function, so a row's token is the same whichever thread draws it (and the same as `SequenceSampler.next`).
 *
 * Nothing waits on the draw thread unless it holds a row: when it is busy elsewhere or not started yet, the engine
 * thread claims every row itself. A draw thread that stops answering (no progress for STALL_MS) is given up: the
 * engine thread draws the rows it held and runs alone from then on.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { drawBounded, UNDECIDED, type DrawJob } from './draw-bounded.ts';
import {
  claimBase,
  claimRow,
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

/** A row's result slot before a thread has drawn it. */
const PENDING = -3;
/** Without progress for this long while the draw thread holds a row, the engine thread stops waiting for it. */
const STALL_MS = 5000;

/** What a round did, for the engine's statistics and tests. */
export interface DrawRoundStats {
  rounds: number;
  rows: number;
  /** rows the draw thread drew */
  helperRows: number;
  /** the thread was given up (errored, exited or stalled) */
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
  private readonly counts = { rounds: 0, rows: 0, helperRows: 0 };

  /** Starts the thread; rounds can run at once (the thread joins them once it is up). */
  constructor() {
    const ts = fileURLToPath(import.meta.url).endsWith('.ts');
    const entry = new URL(ts ? './draw-worker-bootstrap.mjs' : './draw-worker.js', import.meta.url);
    if (!existsSync(entry)) throw new Error(`draw worker entry not found at ${fileURLToPath(entry)}`);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(entry, { workerData: { control: this.control.buffer, port: port2 }, transferList: [port2] });
    this.worker.unref();
    this.port.unref();
    this.worker.on('error', () => (this.broken = true));
    this.worker.once('exit', () => (this.broken = true));
  }

  /** False once the thread was given up: then `round` still works, on the calling thread alone. */
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
    this.results.fill(PENDING, 0, n);
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
    for (let row = claimRow(c, gen, n); row >= 0; row = claimRow(c, gen, n)) {
      const job = jobs[row];
      this.results[row] = job ? drawBounded(job) : UNDECIDED;
      mine++;
      Atomics.add(c, DONE, 1);
    }
    this.waitDone(n, jobs);
    this.counts.rounds++;
    this.counts.rows += n;
    this.counts.helperRows += n - mine;
    return this.results.slice(0, n);
  }

  /** Asks the thread to exit (it is unref'd: it never holds the process open). */
  close(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GEN, 1);
    Atomics.notify(this.control, GEN);
    this.port.close();
  }

  /** Waits for the rows the draw thread holds; draws them here if it stalls (and gives the thread up). */
  private waitDone(n: number, jobs: (DrawJob | null)[]): void {
    const c = this.control;
    let last = Atomics.load(c, DONE);
    let since = performance.now();
    while (last < n) {
      Atomics.wait(c, DONE, last, 100);
      const now = Atomics.load(c, DONE);
      if (now !== last) {
        last = now;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        this.giveUp();
        for (let j = 0; j < n; j++) {
          const job = jobs[j];
          if (this.results[j] === PENDING) this.results[j] = job ? drawBounded(job) : UNDECIDED;
        }
        return;
      }
    }
  }

  private giveUp(): void {
    this.broken = true;
    this.close();
    void this.worker.terminate();
    // its late writes must not land in buffers a later round uses
    this.capacityRows = 0;
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
