/**
 * The draw thread (draw-pool.ts): waits for a round, claims rows as the engine thread publishes them and draws
 * each with drawBounded, the same function the engine thread runs, so a row's token does not depend on which thread
 * drew it. It allocates nothing per round and blocks (Atomics.wait) between rounds.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { drawBounded, UNDECIDED } from './draw-bounded.ts';
import {
  claimRow,
  COUNT,
  DONE,
  GEN,
  ONLINE,
  PARAMS,
  pendingTag,
  READY,
  STOP,
  VERSION,
  VOCAB,
  type DrawBuffers,
} from './draw-protocol.ts';

const {
  control: controlBuffer,
  port,
  slowRowMs,
} = workerData as { control: SharedArrayBuffer; port: MessagePort; slowRowMs: number };
const nap = new Int32Array(new SharedArrayBuffer(4));
const control = new Int32Array(controlBuffer);
let version = -1;
let slab: Float32Array = new Float32Array(0);
let params: Float64Array = new Float64Array(0);
let results: Int32Array = new Int32Array(0);

/** Takes the buffers of the engine's current version (sent on the port before the round that first uses them). */
function update(): void {
  const want = Atomics.load(control, VERSION);
  while (version !== want) {
    const m = receiveMessageOnPort(port);
    if (!m) return; // not arrived yet: this round is left to the engine thread
    const b = m.message as DrawBuffers;
    version = b.version;
    slab = new Float32Array(b.slab);
    params = new Float64Array(b.params);
    results = new Int32Array(b.results);
  }
}

function drawRow(row: number, vocab: number): number {
  const p = row * PARAMS;
  if (slowRowMs > 0) Atomics.wait(nap, 0, 0, slowRowMs); // tests: a draw thread that is descheduled mid-round
  if (!(params[p + 1] > 0)) return UNDECIDED; // a row the engine thread ended while preparing it: nothing to draw
  try {
    return drawBounded({
      z: slab.subarray(row * vocab, (row + 1) * vocab),
      max: params[p],
      invT: params[p + 1],
      topP: params[p + 2],
      minP: params[p + 3],
      u: params[p + 4],
    });
  } catch {
    return UNDECIDED; // the engine thread takes the exact draw, and its error if there is one
  }
}

let gen = Atomics.load(control, GEN);
Atomics.add(control, ONLINE, 1);
for (;;) {
  Atomics.wait(control, GEN, gen);
  if (Atomics.load(control, STOP) === 1) break;
  gen = Atomics.load(control, GEN);
  update();
  if (version !== Atomics.load(control, VERSION)) continue;
  const count = Atomics.load(control, COUNT);
  const vocab = Atomics.load(control, VOCAB);
  for (let row = claimRow(control, gen, count); row >= 0; row = claimRow(control, gen, count)) {
    for (let ready = Atomics.load(control, READY); ready <= row; ready = Atomics.load(control, READY)) {
      Atomics.wait(control, READY, ready);
    }
    const token = drawRow(row, vocab);
    if (Atomics.compareExchange(results, row, pendingTag(gen), token) === pendingTag(gen)) {
      Atomics.add(control, DONE, 1);
      Atomics.notify(control, DONE);
    }
  }
}
port.close();
