/**
 * Repetition, presence and frequency penalties inside the graph, as sampler.ts applies them after logit_bias:
 *
 *   seen tokens (prompt or output):  z ← saturate(z > 0 ? z / repetition : z · repetition)
 *   generated tokens (count c ≥ 1):  z ← saturate(z − (presence + frequency · c))
 *
 * each in float64 from the float32 value, saturated to ±FLOAT32_MAX and stored to float32, masked (−∞) entries left
 * alone. The per-row state is dense and stays on the device: `seen` [B, V] bool and `counts` [B, V] float32 (whole
 * numbers), 5·V bytes per row (0.76 MB at V = 151936). The block also returns the state after this step's token, so
 * the engine binds `*_next` to the buffers it feeds next step (a ping-pong pair, or the same buffers if ONNX Runtime
 * accepts the alias); a row whose token is negative (−1, −2) keeps its state, and the engine records the host's choice
 * for a −2 row itself (one element each). At admission the engine writes the prompt's tokens into `seen` and zeroes
 * `counts` for the row's slot. Per step this adds ~12 elementwise passes over [B, V] and 3·B·8 bytes of parameters.
 */
import type { Graph } from './ir.ts';

const FLOAT = 1;
const DOUBLE = 11;
const FLOAT32_MAX = 3.4028234663852886e38;

/** The per-row inputs of the penalty block, by value name. */
export interface DevicePenaltyInputs {
  repetition: string; // float64 [B]; 1 = off
  presence: string; // float64 [B]; 0 = off
  frequency: string; // float64 [B]; 0 = off
  seen: string; // bool [B, V]: token in the prompt or generated so far
  counts: string; // float32 [B, V]: times generated so far
}

/** Applies the penalties to processed logits z [B, V] float32 (after logit_bias); returns the new z. */
export function applyPenalties(g: Graph, z: string, io: DevicePenaltyInputs, p: string): string {
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/penalties/${name}`);
  const f64 = (v: number) => g.constant('float64', [v], []);
  const axis1 = g.constant('int64', [1]);
  const rows = (x: string, name: string) => op('Unsqueeze', [x, axis1], `${name}/Unsqueeze`); // [B] → [B, 1]
  /** float64 [B, V] → float32 saturated at ±FLOAT32_MAX (the host's `saturate`; NaN cannot arise from finite z). */
  const store = (x: string, name: string) =>
    op('Cast', [op('Min', [op('Max', [x, f64(-FLOAT32_MAX)], `${name}/Max`), f64(FLOAT32_MAX)], `${name}/Min`)], `${name}/Cast`, {
      to: { i: FLOAT },
    });
  const live = op('Not', [op('Equal', [z, g.constant('float32', [-Infinity], [])], 'masked')], 'live'); // [B, V]

  const rp = rows(io.repetition, 'repetition');
  const zD = op('Cast', [z], 'z/Cast', { to: { i: DOUBLE } }); // [B, V]
  const positive = op('Greater', [zD, f64(0)], 'repetition/positive');
  const divided = op('Div', [zD, rp], 'repetition/Div');
  const multiplied = op('Mul', [zD, rp], 'repetition/Mul');
  // float64 Where has no CUDA kernel: select after storing to float32
  const repeated = op(
    'Where',
    [positive, store(divided, 'repetition/divided'), store(multiplied, 'repetition/multiplied')],
    'repetition/Where',
  );
  const z1 = op('Where', [op('And', [io.seen, live], 'repetition/on'), repeated, z], 'repetition/apply'); // [B, V]

  const generated = op('Greater', [io.counts, g.constant('float32', [0], [])], 'generated'); // [B, V]
  const amount = op(
    'Add',
    [
      rows(io.presence, 'presence'),
      op(
        'Mul',
        [rows(io.frequency, 'frequency'), op('Cast', [io.counts], 'counts/Cast', { to: { i: DOUBLE } })],
        'frequency/Mul',
      ),
    ],
    'amount',
  ); // [B, V]
  const penalised = store(op('Sub', [op('Cast', [z1], 'z1/Cast', { to: { i: DOUBLE } }), amount], 'Sub'), 'penalised');
  return op(
    'Where',
    [
      op('And', [generated, op('Not', [op('Equal', [z1, g.constant('float32', [-Infinity], [])], 'masked1')], 'live1')], 'on'),
      penalised,
      z1,
    ],
    'apply',
  ); // [B, V]
}

/** The state after this step: the chosen token [B] int64 (negative = none) marked seen and counted once more. */
export function nextPenaltyState(g: Graph, token: string, io: DevicePenaltyInputs, p: string): { seen: string; counts: string } {
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/penalties/next/${name}`);
  const column = op('Unsqueeze', [token, g.constant('int64', [1])], 'Unsqueeze'); // [B, 1]
  const chosen = op('GreaterOrEqual', [column, g.constant('int64', [0], [])], 'chosen'); // [B, 1]
  const at = op('Max', [column, g.constant('int64', [0], [])], 'at'); // [B, 1] a valid index; unchanged when none
  const seenAt = op('Or', [op('GatherElements', [io.seen, at], 'seen/GatherElements', { axis: { i: 1 } }), chosen], 'seen/Or');
  const countAt = op(
    'Add',
    [
      op('GatherElements', [io.counts, at], 'counts/GatherElements', { axis: { i: 1 } }),
      op('Cast', [chosen], 'chosen/Cast', { to: { i: FLOAT } }),
    ],
    'counts/Add',
  );
  return {
    seen: op('ScatterElements', [io.seen, at, seenAt], 'seen/ScatterElements', { axis: { i: 1 } }),
    counts: op('ScatterElements', [io.counts, at, countAt], 'counts/ScatterElements', { axis: { i: 1 } }),
  };
}
