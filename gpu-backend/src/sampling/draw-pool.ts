/**
 * Draw threads for the host sampler's costly part. A decode step's sampled rows (top_p, or the full softmax) each
 * need one pass over the vocabulary with a weight per token (draw-bounded.ts: ~5 ns per token, 0.17 ms per row at
 * V = 32000), while ONNX Runtime's threads wait for the next run: on two cores one of them is idle. Here the engine
 * thread prepares each row (penalties, logit_bias: state of the sequence) into shared memory and publishes it; the
 * draw threads and the engine thread all claim published rows and draw them with the same pure function, so a row's
 * token is the same whichever thread draws it (and the same as `SequenceSampler.next`).
 *
 * Nothing waits long on a draw thread: when they are busy elsewhere or not started yet, the engine thread claims every
 * row itself, and a row a draw thread holds but has not finished within about one row's time (say it was descheduled
 * on a loaded machine) is drawn again by the engine thread; whichever finishes first writes the token (compare-and-
 * swap on a slot tagged with the round, so a late write cannot land in another round).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  ONLINE,
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
  /** draw threads (besides the calling one) */
  threads: number;
  /** rows the draw threads drew */
  helperRows: number;
  /** rows a draw thread had claimed but not finished in time, drawn again on the calling thread */
  stolenRows: number;
  /** a draw thread failed or exited (the others, and the calling thread, go on) */
  broken: boolean;
}

let shared: DrawPool | null = null;

/** Draw threads by default: one per core beside the calling thread, at most 7 (the rows of a step are few). */
export function defaultDrawThreads(): number {
  return Math.max(1, Math.min(availableParallelism() - 1, 7));
}

export class DrawPool {
  /**
   * This thread's pool, started on first use and kept (unref'd) for the life of the thread: schedulers of one
   * thread take turns (a round is synchronous), so they share it rather than each starting one. A pool whose
   * threads all failed is replaced.
   */
  static shared(): DrawPool {
    if (!shared?.usable) shared = new DrawPool();
    return shared;
  }

  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
  private readonly ports: MessagePort[] = [];
  private readonly workers: Worker[] = [];
  private alive = 0;
  private gen = 0;
  private capacityRows = 0;
  private vocab = 0;
  private slab: Float32Array = new Float32Array(0);
  private params: Float64Array = new Float64Array(0);
  private results: Int32Array = new Int32Array(0);
  private broken = false;
  private readonly counts = { rounds: 0, rows: 0, helperRows: 0, stolenRows: 0 };

  /**
   * Starts `threads` draw threads; rounds can run at once (a thread joins them once it is up). `slowRowMs` (tests
   * only): each draw thread sleeps this long before each row it draws, as a descheduled one would.
   */
  constructor({ threads = defaultDrawThreads(), slowRowMs = 0 }: { threads?: number; slowRowMs?: number } = {}) {
    const ts = fileURLToPath(import.meta.url).endsWith('.ts');
    const entry = new URL(ts ? './draw-worker-bootstrap.mjs' : './draw-worker.js', import.meta.url);
    if (!existsSync(entry)) throw new Error(`draw worker entry not found at ${fileURLToPath(entry)}`);
    for (let k = 0; k < threads; k++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(entry, {
        workerData: { control: this.control.buffer, port: port2, slowRowMs },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      let gone = false;
      const lost = () => {
        if (gone) return;
        gone = true;
        this.broken = true;
        this.alive--;
      };
      worker.on('error', lost);
      worker.once('exit', lost);
      this.ports.push(port1);
      this.workers.push(worker);
      this.alive++;
    }
  }

  /** False once every draw thread failed or exited: then `round` still works, on the calling thread alone. */
  get usable(): boolean {
    return this.alive > 0;
  }

  /** Draw threads started and waiting for rounds (they join rounds from then on). */
  get online(): number {
    return Atomics.load(this.control, ONLINE);
  }

  get stats(): DrawRoundStats {
    return { ...this.counts, threads: this.workers.length, broken: this.broken };
  }

  /**
   * Draws `n` rows of length `vocab`: `prepare(j, into)` writes row j's processed logits into `into` and returns its
   * job (null: a row that ended while being prepared, nothing to draw); `meanwhile` runs after every row is
   * published, while the draw threads work. Returns each row's drawBounded token (UNDECIDED: take the exact draw).
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
    if (this.alive > 0) Atomics.notify(c, GEN);
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

  /** Draws `row` here and writes its token unless a draw thread wrote it first; whether this thread's stood. */
  private settle(row: number, pending: number, job: DrawJob | null): boolean {
    const token = job ? drawBounded(job) : UNDECIDED;
    return Atomics.compareExchange(this.results, row, pending, token) === pending;
  }

  /**
   * The rows draw threads claimed: waits for them about one row's time (`rowMs`, as this thread took) at a time,
   * and draws the oldest unfinished one here when it has not come; returns how many this thread wrote.
   */
  private finishHeld(n: number, pending: number, jobs: (DrawJob | null)[], rowMs: number): number {
    const c = this.control;
    let mine = 0;
    for (let row = 0; row < n; row++) {
      if (Atomics.load(this.results, row) !== pending) continue;
      const done = Atomics.load(c, DONE);
      if (this.alive > 0) Atomics.wait(c, DONE, done, Math.max(0.05, rowMs));
      if (Atomics.load(this.results, row) !== pending) continue;
      if (this.settle(row, pending, jobs[row])) {
        mine++;
        this.counts.stolenRows++;
      }
    }
    return mine;
  }

  /** Asks the draw threads to exit (they are unref'd: they never hold the process open). */
  close(): void {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, GEN, 1);
    Atomics.notify(this.control, GEN);
    for (const port of this.ports) port.close();
    this.alive = 0;
  }

  /** Buffers for n rows of `vocab` (replaced, and sent to the threads, when they are too small or V changes). */
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
    if (this.alive > 0) for (const port of this.ports) port.postMessage(b);
    Atomics.store(this.control, VERSION, version);
  }
}
