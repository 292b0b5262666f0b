/**
 * Sampling decided inside the graph, after the blend (issue 14 item 3): blended logits [B, V] in, per output row
 * the chosen token and its logprobs out. It reproduces the host sampler (sampling/sampler.ts + draw.ts) step for
 * step, so that the same uniform number u gives the same token.
 *
 * ## What the host does, and why the device follows its order rather than a probability order
 *
 * The host draws by inverse CDF, but not always in descending-probability order:
 *   - no truncation, or min_p alone: in token-id order (drawFull, drawMinP);
 *   - top_k (with top_p/min_p among the k): in rank order, logit descending, ties to the lower id (drawTopK);
 *   - top_p without top_k: tokens are put in 2048 buckets of x = (z − max)/T over (−60, 0]; the draw walks the
 *     buckets in rank order, each bucket in id order, except the bucket where the nucleus ends, which is walked in
 *     rank order (drawNucleus); when min_p binds, in id order over {w ≥ min_p} (drawAtLeast).
 * A descending-order CDF would give the same distribution but a different token for the same u, so the graph builds
 * each of these orders instead. Nothing in the host sampler has to change for that.
 *
 * ## Arithmetic
 *
 * The host computes weights, sums and thresholds in float64 from float32 logits, so the graph does too: the logits
 * are cast to float32 (exact from float16), then to float64, and x = (z − max)·(1/T), the bucket index
 * floor(−x·2048/60), the top_p limit and the min_p tests are the same IEEE operations as on the host, so they agree
 * bit for bit. What differs: exp and log (the EP's libm within 1 ulp; the host's weights use a table and a polynomial
 * within 2 ulp, sampling/draw.ts expWeight) and the association of sums
 * (the host adds left to right; ReduceSum and the two-level cumulative sum below group differently). Both are
 * relative errors of a few 1e-16 on a cumulative mass, so the device picks a different token than the host only
 * when u·total falls within ~V·1e-16·total of a CDF boundary: for V = 151936 a probability below ~1e-10 per draw.
 * The per-row parameters are float64 inputs for the same reason (a float32 temperature 0.7 is not the host's 0.7).
 *
 * ## Candidates and when the device defers to the host
 *
 * Rank orders come from one TopK of C = min(candidates, V) entries (default 1024), re-sorted so that ties are
 * broken by the lower id whatever the EP's TopK does with ties (CUDA's radix TopK does not break them by index):
 * key = run number of the value · V + id. Let τ be the C-th value and F the number of candidates above τ. Ranks
 * below F are exactly the host's; ranks from F on hold τ-valued tokens whose weights are right but whose ids may be
 * not the lowest ones. So:
 *   - greedy, no truncation, min_p alone: never need candidates (id order over the whole vocabulary): always exact;
 *   - top_k: exact when the kept set lies below rank F and (top_k ≤ C or top_p is off);
 *   - top_p: exact when the nucleus lies below rank F; when min_p binds (the last kept weight, or τ's, is under
 *     min_p) the draw is in id order over the whole vocabulary and exact again;
 *   - otherwise the row's token is −2: the engine samples that row on the host from its logits with the same u.
 *   C = V makes every row exact (small vocabularies, tests).
 * A row with no finite logit (after logit_bias) gets −1, which the engine turns into NonFiniteLogitsError.
 *
 * ## Cost per decode step at B = 32, V = 151936 (C = 1024), not yet measured on a GPU
 *
 *   - 240 nodes (255 with logit_bias), standard ONNX ops only, no If/Loop, no value-dependent shape: fixed shapes
 *     for a fixed B (batch-size buckets can be captured as CUDA graphs). No float64 Where: ORT's CUDA Where has no
 *     float64 kernel and would run on the CPU, so float64 selections are exact arithmetic (w·[c], a + ln[c]).
 *   - ~27 elementwise/reduce passes over [B, V] (bool, float32, float64; 4.86M elements each): ~1.3 GB of memory
 *     traffic, ~0.3 ms at an H200's 4.8 TB/s;
 *   - one TopK(k = C) over [B, V] float32: on CUDA ORT's RadixTopK, one block per row and several passes over it:
 *     likely the largest single cost, ~1 ms (ORT's own comment measures 1.36 ms for k = 16 over 248k, 8 rows, with
 *     that kernel); a smaller C does not change the kernel until k ≤ 32;
 *   - two TopK over [B, C] (float64, int64) and CumSums over [B, C] and over blocks of ~√V: ORT's CUDA CumSum is a
 *     naive O(n²) kernel (each output sums its whole prefix), hence the two-level sum over the vocabulary
 *     (297 blocks of 512: ~0.2M additions per row instead of 11.5G);
 *   - on CUDA, TopK reads its k input on the host in some ORT versions (a device-to-host copy): check under CUDA
 *     graph capture (k is a constant initializer here).
 *   On two loaded CPU cores (load average ~10) one run took 6–11 ms at B = 1 and 0.85–1.05 s at B = 32, about the
 *   host sampler's time for the same rows: on the CPU the host sampler stays the better choice. Profiled on the CPU EP
 *   (B = 8, V = 32000, one thread, ORT's profiler; 2026-12-02): 47 ms per run, of which the candidates' TopK(1024)
 *   12.4 ms (1.5 ms per row), the float64 Exp over [B, V] 5.1 ms, the top_p re-sort TopK 2.6 ms, the remaining ~230
 *   nodes the rest; the host sampler's top_p draw was ~0.7 ms of CPU per row at that size then, ~0.14 ms beyond
 *   greedy since sampling/draw-bounded.ts (the same token per u, from exact weights of two buckets only).
 *
 *   Host ↔ device per step: in u, temperature, top_p, min_p (float64) and top_k (int64): 5·B·8 = 1,280 bytes (float64,
 *   not float32, because a float32 temperature or u is not the host's number); out token (int64) and logprob
 *   (float64): 16·B = 512 bytes; top ids (int64) and top logprobs (float64) [B, K]: 16·B·K = 10,240 bytes at K = 20,
 *   read only for rows that asked for top_logprobs. logit_bias adds [B, biasSlots] ids and values (16·B·biasSlots
 *   bytes), which change only when a row is admitted: keep them in device buffers rather than sending them per step.
 *
 * Penalties (repetition, presence, frequency), with `penalties: true`, are applied after logit_bias from dense
 * per-row state kept on the device (device-penalties.ts); without it, rows with penalties are sampled on the host.
 */
import { breakTies, idOrderDraw } from './device-draw.ts';
import {
  HOST_DECIDES,
  NO_FINITE_LOGIT,
  SAMPLING_IO,
  type DeviceSamplingInputs,
  type DeviceSamplingOptions,
  type DeviceSamplingOutputs,
} from './device-sampling-io.ts';
import { applyPenalties, nextPenaltyState } from './device-penalties.ts';
import type { Graph } from './ir.ts';
// the host sampler's buckets: the device block draws the token draw.ts draws
import { BUCKETS, BUCKET_SCALE, NEGLIGIBLE } from '../sampling/draw.ts';

/** Element type codes of the ONNX Cast op. */
const FLOAT = 1;
const INT64 = 7;
const DOUBLE = 11;

/** The host's constants (sampler.ts; the buckets are draw.ts's own, imported above). */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Appends the sampling block to `g` after the blended logits `logits` [B, V] and returns the names of its outputs
 * (not declared as graph outputs; see `addDeviceSampling`).
 *
 *   logits ─► mask NaN/±∞ ─► logit_bias ─► z ─┬─► ReduceMin(index of max) ─────────────────────────► greedy
 *                                             ├─► x = (z − max)/T ─► w ─► Σ ─► log Z ─────────────────► logprobs
 *                                             ├─► id-order mask ─► block sums ─► CumSum ─► u·total ──► id draw
 *                                             └─► TopK(C) ─► tie re-sort ─┬─► top_k prefix ─► CumSum ─► rank draw
 *                                                                         └─► nucleus ─► bucket re-sort ─► draw
 *   mode per row (greedy / top_k / top_p / min_p / full) ─► Where ─► token, logprob, top ids and logprobs
 */
export function emitDeviceSampling(
  g: Graph,
  logits: string,
  io: DeviceSamplingInputs,
  opts: DeviceSamplingOptions,
): DeviceSamplingOutputs {
  const p = opts.prefix ?? '/sample';
  const V = opts.vocab;
  const C = Math.min(opts.candidates ?? 1024, V);
  const K = Math.min(opts.topLogprobs ?? 20, C);
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/${name}`);
  const f64 = (v: number) => g.constant('float64', [v], []);
  const f32 = (v: number) => g.constant('float32', [v], []);
  const i64 = (v: number) => g.constant('int64', [v], []);
  const axis1 = g.constant('int64', [1]);
  const cast = (x: string, to: number, name: string) => op('Cast', [x], `${name}/Cast`, { to: { i: to } });
  const not = (x: string, name: string) => op('Not', [x], `${name}/Not`);
  const and = (a: string, b: string, name: string) => op('And', [a, b], `${name}/And`);
  const or = (a: string, b: string, name: string) => op('Or', [a, b], `${name}/Or`);
  const where = (c: string, a: string, b: string, name: string) => op('Where', [c, a, b], `${name}/Where`);
  // ONNX Runtime's CUDA Where has no float64 kernel (it would fall back to the CPU): float64 selections are written
  // as exact arithmetic instead, `keep` for w·[c] (w finite) and `orMinusInf` for a + ln[c] (a finite or −∞).
  const asD = (c: string, name: string) => cast(c, DOUBLE, name);
  const keep = (c: string, w: string, name: string) => op('Mul', [w, asD(c, name)], `${name}/keep`);
  const orMinusInf = (c: string, a: string, name: string) =>
    op('Add', [a, op('Log', [asD(c, name)], `${name}/Log`)], `${name}/orMinusInf`);
  /** Σ over axis 1 of a boolean [B, N] as float64 [B, 1] (exact below 2^53). */
  const count = (b: string, name: string) =>
    op('ReduceSum', [cast(b, DOUBLE, name), axis1], `${name}/ReduceSum`, { keepdims: { i: 1 } });
  /** Column `j` of [B, N] as [B, 1]. */
  const column = (x: string, j: number, name: string) =>
    op('Gather', [x, g.constant('int64', [j])], `${name}/Gather`, { axis: { i: 1 } });
  const cumsum = (x: string, name: string, exclusive = false) =>
    op('CumSum', [x, i64(1)], `${name}/CumSum`, exclusive ? { exclusive: { i: 1 } } : {});
  const range = (n: number, type: 'float32' | 'float64' | 'int64', name: string) =>
    op('Range', [g.constant(type, [0], []), g.constant(type, [n], []), g.constant(type, [1], [])], `${name}/Range`);
  const rows = (x: string, name: string) => op('Unsqueeze', [x, axis1], `${name}/Unsqueeze`); // [B] → [B, 1]

  // ── processed logits: NaN and ±∞ masked to −∞ (sampler.ts process), then logit_bias ──
  const raw = opts.logitsType === 'float16' ? cast(logits, FLOAT, 'logits') : logits; // [B, V] float32
  const finite = op('Equal', [op('Sub', [raw, raw], 'finite/Sub'), f32(0)], 'finite/Equal'); // [B, V]; x − x = 0 iff finite
  let z = where(finite, raw, f32(-Infinity), 'masked'); // [B, V] float32
  if ((opts.biasSlots ?? 0) > 0) z = logitBias(z, io, V, p, g);
  if (opts.penalties) {
    if (!io.penalties) throw new Error('device sampling: penalties need their inputs');
    z = applyPenalties(g, z, io.penalties, p);
  }

  // ── ranked candidates, ties re-sorted to the lower id ──
  const [vals, ids] = g.op(
    'TopK',
    [z, g.constant('int64', [C])],
    { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } },
    { name: `${p}/candidates/TopK`, outputs: 2 },
  ); // [B, C] float32, int64
  const max32 = column(vals, 0, 'max'); // [B, 1]
  const none = op('Equal', [max32, f32(-Infinity)], 'none/Equal'); // [B, 1] no finite logit
  const maxD = cast(where(none, f32(0), max32, 'max/safe'), DOUBLE, 'max'); // [B, 1]
  const ranked = breakTies(g, vals, ids, V, C, p);
  const cIds = ranked.ids; // [B, C] host rank order
  const cVals = cast(ranked.values, DOUBLE, 'ranked/values'); // [B, C]
  const tau = column(vals, C - 1, 'tau'); // [B, 1] the C-th value
  const above = C === V ? f64(C) : count(op('Greater', [vals, tau], 'tau/Greater'), 'tau/above'); // [B, 1] F: ranks known exactly

  // ── per-row parameters ──
  const temperature = rows(io.temperature, 'temperature'); // [B, 1]
  const inverse = op('Div', [f64(1), temperature], 'temperature/Div');
  const sampled = and(
    op('Greater', [temperature, f64(0)], 'temperature/Greater'),
    op('Equal', [op('Sub', [inverse, inverse], 'temperature/Sub'), f64(0)], 'temperature/Equal'),
    'sampled',
  ); // [B, 1]
  const sampledD = asD(sampled, 'sampled');
  const tEff = op('Add', [op('Mul', [temperature, sampledD], 'invT/Mul'), op('Sub', [f64(1), sampledD], 'invT/Sub')], 'invT/T'); // T, or 1 when greedy
  const invT = op('Div', [f64(1), tEff], 'invT'); // [B, 1] greedy logprobs use T = 1
  const topK = rows(io.topK, 'top_k'); // [B, 1] int64
  const topP = rows(io.topP, 'top_p');
  const minP = rows(io.minP, 'min_p');
  const u = rows(io.uniform, 'uniform');
  const kOn = and(op('Greater', [topK, i64(0)], 'top_k/Greater'), op('Less', [topK, i64(V)], 'top_k/Less'), 'top_k/on');
  const pOn = op('Less', [topP, f64(1)], 'top_p/on');
  const mOn = op('Greater', [minP, f64(0)], 'min_p/on');

  // ── weights over the vocabulary, the normaliser, greedy ──
  const zD = cast(z, DOUBLE, 'z'); // [B, V]
  const x = op('Mul', [op('Sub', [zD, maxD], 'x/Sub'), invT], 'x/Mul'); // [B, V] (z − max)/T, ≤ 0
  const e = op('Exp', [x], 'w/Exp'); // [B, V]
  const live = op('Greater', [x, f64(NEGLIGIBLE)], 'w/live'); // [B, V]
  const w = keep(live, e, 'w'); // [B, V]
  const sum = op('ReduceSum', [w, axis1], 'sum/ReduceSum', { keepdims: { i: 1 } }); // [B, 1] softmaxSum
  const logZ = op('Log', [sum], 'logZ/Log'); // [B, 1]
  const index = range(V, 'float32', 'index'); // [V] exact below 2^24
  const isMax = op('Equal', [z, max32], 'greedy/Equal');
  const greedy = cast(
    op('ReduceMin', [where(isMax, index, f32(V), 'greedy'), axis1], 'greedy/ReduceMin', { keepdims: { i: 1 } }),
    INT64,
    'greedy',
  ); // [B, 1]

  // ── candidate weights and positions ──
  const pos = range(C, 'float64', 'position'); // [C]
  const first = op('Equal', [pos, f64(0)], 'position/first'); // [C]
  const valid = not(op('Equal', [cVals, f64(-Infinity)], 'ranked/valid'), 'ranked/valid'); // [B, C]
  const xc = op('Mul', [op('Sub', [cVals, maxD], 'ranked/x/Sub'), invT], 'ranked/x/Mul'); // [B, C]
  const ec = op('Exp', [xc], 'ranked/w/Exp'); // [B, C] drawTopK's weights (no cut)
  const wc = keep(op('Greater', [xc, f64(NEGLIGIBLE)], 'ranked/w/live'), ec, 'ranked/w'); // [B, C] drawNucleus's
  const lastOf = (n: string, name: string) =>
    cast(op('Max', [op('Sub', [n, f64(1)], `${name}/Sub`), f64(0)], `${name}/Max`), INT64, name); // [B, 1]
  /** Inverse CDF over weights [B, N] whose kept entries are a prefix of `n` entries: first j with Σ_{≤j} > u·Σ. */
  const draw = (weights: string, n: string, name: string) => {
    const acc = cumsum(weights, name); // [B, N]
    const target = op('Mul', [u, column(acc, C - 1, `${name}/total`)], `${name}/target`);
    const crossed = count(op('LessOrEqual', [acc, target], `${name}/LessOrEqual`), `${name}/before`);
    return cast(op('Min', [crossed, op('Sub', [n, f64(1)], `${name}/last`)], `${name}/Min`), INT64, `${name}/position`); // [B, 1]
  };

  // ── top_k (drawTopK): rank order, top_p over the k's mass, min_p on w, all prefixes ──
  const inK = and(valid, op('Less', [pos, cast(topK, DOUBLE, 'top_k')], 'top_k/in'), 'top_k/in'); // [B, C]
  const wK = keep(inK, ec, 'top_k/w');
  const limitK = op('Mul', [topP, column(cumsum(wK, 'top_k/sum'), C - 1, 'top_k/sum')], 'top_k/limit');
  const nucleusK = or(
    first,
    or(not(pOn, 'top_k/p'), op('Less', [cumsum(wK, 'top_k/above', true), limitK], 'top_k/p/Less'), 'top_k/p'),
    'top_k/p/first',
  );
  const minK = or(
    first,
    or(not(mOn, 'top_k/m'), op('GreaterOrEqual', [ec, minP], 'top_k/m/GreaterOrEqual'), 'top_k/m'),
    'top_k/m/first',
  );
  const keptK = and(inK, and(nucleusK, minK, 'top_k/kept'), 'top_k/kept/in'); // [B, C]
  const nK = count(keptK, 'top_k/n');
  const tokenK = op('GatherElements', [cIds, draw(keep(keptK, ec, 'top_k/draw/w'), nK, 'top_k/draw')], 'top_k/token', {
    axis: { i: 1 },
  }); // [B, 1]
  const kFits = or(op('LessOrEqual', [topK, i64(C)], 'top_k/fits'), not(pOn, 'top_k/fits/p'), 'top_k/fits');
  const exactK = C === V ? null : and(op('LessOrEqual', [nK, above], 'top_k/exact/LessOrEqual'), kFits, 'top_k/exact');

  // ── top_p without top_k (drawNucleus) ──
  const wN = keep(valid, wc, 'top_p/w'); // [B, C]
  const limitN = op('Mul', [topP, sum], 'top_p/limit');
  const keptN = and(
    op('Greater', [wN, f64(0)], 'top_p/positive'),
    or(first, op('Less', [cumsum(wN, 'top_p/above', true), limitN], 'top_p/Less'), 'top_p/first'),
    'top_p/kept',
  ); // [B, C]
  const nN = count(keptN, 'top_p/n');
  const lastN = lastOf(nN, 'top_p/last');
  const binds = and(
    mOn,
    op('Less', [op('GatherElements', [wN, lastN], 'top_p/last/w', { axis: { i: 1 } }), minP], 'top_p/binds/Less'),
    'top_p/binds',
  ); // [B, 1]
  const bucketD = op(
    'Min',
    [
      op(
        'Floor',
        [op('Mul', [op('Neg', [xc], 'top_p/bucket/Neg'), f64(BUCKET_SCALE)], 'top_p/bucket/Mul')],
        'top_p/bucket/Floor',
      ),
      f64(BUCKETS - 1),
    ],
    'top_p/bucket/Min',
  ); // [B, C]
  const bucket = cast(op('Max', [bucketD, f64(0)], 'top_p/bucket/Max'), INT64, 'top_p/bucket'); // [B, C] (NaN only in rows with no finite logit)
  const boundary = op('GatherElements', [bucket, lastN], 'top_p/boundary', { axis: { i: 1 } }); // [B, 1]
  const posI = range(C, 'int64', 'position/int');
  const inner = op('Add', [op('Mul', [bucket, i64(V)], 'top_p/key/bucket'), cIds], 'top_p/key/inner'); // id order inside a bucket
  const edge = op('Add', [op('Mul', [boundary, i64(V)], 'top_p/key/boundary'), posI], 'top_p/key/edge'); // rank order in the boundary bucket
  const keyN = where(
    keptN,
    where(op('Less', [bucket, boundary], 'top_p/key/Less'), inner, edge, 'top_p/key/kept'),
    op('Add', [posI, i64(BUCKETS * V)], 'top_p/key/rest'),
    'top_p/key',
  ); // [B, C] int64
  const orderN = g.op(
    'TopK',
    [keyN, g.constant('int64', [C])],
    { axis: { i: -1 }, largest: { i: 0 }, sorted: { i: 1 } },
    { name: `${p}/top_p/order/TopK`, outputs: 2 },
  )[1];
  const wDraw = op('GatherElements', [keep(keptN, wN, 'top_p/draw/w'), orderN], 'top_p/draw/w/GatherElements', {
    axis: { i: 1 },
  });
  const idsDraw = op('GatherElements', [cIds, orderN], 'top_p/draw/ids', { axis: { i: 1 } });
  const tokenN = op('GatherElements', [idsDraw, draw(wDraw, nN, 'top_p/draw')], 'top_p/token', { axis: { i: 1 } }); // [B, 1]
  const exactN = C === V ? null : op('LessOrEqual', [nN, above], 'top_p/exact');

  // ── id order over the whole vocabulary: no truncation (drawFull), min_p alone (drawMinP), binding min_p (drawAtLeast) ──
  // one mask x > a ∧ w ≥ b ∧ z ≥ c with per-row thresholds: drawFull (−60, 0, −∞), drawAtLeast (−60, min_p, −∞),
  // drawMinP (−∞, min_p, max + ln(min_p)·T); the last keeps the host's z ≥ zFloor prefilter as it is computed there
  const useAtLeast = and(not(kOn, 'id/k'), and(pOn, binds, 'id/at_least'), 'id/at_least/k'); // [B, 1]
  const useMinP = and(not(kOn, 'id/k2'), and(not(pOn, 'id/p'), mOn, 'id/min_p'), 'id/min_p/k'); // [B, 1]
  const zFloor = op('Add', [maxD, op('Div', [op('Log', [minP], 'min_p/Log'), invT], 'min_p/Div')], 'min_p/floor'); // [B, 1]
  const xAbove = orMinusInf(not(useMinP, 'id/x'), f64(NEGLIGIBLE), 'id/x'); // −∞ for drawMinP, else −60
  const wAtLeast = keep(or(useMinP, useAtLeast, 'id/w/on'), minP, 'id/w');
  // zFloor is finite where it is used; elsewhere it may be −∞, so it is bounded before the select (no float32 lies below)
  const zAtLeast = orMinusInf(
    useMinP,
    op('Mul', [op('Max', [zFloor, f64(-1e308)], 'id/z/Max'), asD(useMinP, 'id/z/on')], 'id/z/Mul'),
    'id/z',
  );
  const mask = and(
    and(op('Greater', [x, xAbove], 'id/x/Greater'), op('GreaterOrEqual', [e, wAtLeast], 'id/w/GreaterOrEqual'), 'id/xw'),
    op('GreaterOrEqual', [zD, zAtLeast], 'id/z/GreaterOrEqual'),
    'id/mask',
  ); // [B, V]
  const tokenId = idOrderDraw(g, keep(mask, e, 'id/weights'), mask, u, index, V, `${p}/id`);

  // ── per-row choice ──
  const host = i64(HOST_DECIDES);
  const fromK = exactK ? where(exactK, tokenK, host, 'choice/top_k') : tokenK;
  const fromN = exactN ? where(exactN, tokenN, host, 'choice/top_p/exact') : tokenN;
  const sampledToken = where(
    kOn,
    fromK,
    where(pOn, where(binds, tokenId, fromN, 'choice/top_p'), tokenId, 'choice/id'),
    'choice/sampled',
  );
  const token2 = where(none, i64(NO_FINITE_LOGIT), where(sampled, sampledToken, greedy, 'choice/greedy'), 'choice'); // [B, 1]
  const safe = op('Max', [token2, i64(0)], 'logprob/safe');
  const chosen = op('Sub', [op('GatherElements', [x, safe], 'logprob/x', { axis: { i: 1 } }), logZ], 'logprob/Sub');
  const noneLog = op('Log', [asD(op('GreaterOrEqual', [token2, i64(0)], 'logprob/some'), 'logprob/some')], 'logprob/Log'); // 0, or −∞ when token < 0
  const logprob = op('Add', [chosen, op('Sub', [noneLog, noneLog], 'logprob/nan')], 'logprob'); // NaN when token < 0
  const upToK = (v: string, name: string) =>
    op('Slice', [v, g.constant('int64', [0]), g.constant('int64', [K]), axis1], `${name}/Slice`);
  const token = op('Squeeze', [token2, axis1], 'token/Squeeze'); // [B]
  const state = opts.penalties && io.penalties ? nextPenaltyState(g, token, io.penalties, p) : null;
  return {
    token,
    ...(state ? { seenNext: state.seen, countsNext: state.counts } : {}),
    logprob: op('Squeeze', [logprob, axis1], 'logprob/Squeeze'), // [B]
    topIds: upToK(cIds, 'top_ids'), // [B, K]
    topLogprobs: op('Sub', [upToK(xc, 'top_logprobs'), logZ], 'top_logprobs/Sub'), // [B, K]
  };
}

/**
 * logit_bias as sampler.ts applies it: z[id] ← saturate(z[id] + bias) for finite z[id] (results beyond the float32
 * range clamp to ±FLOAT32_MAX, NaN becomes −∞, −∞ stays), stored to float32. Unused slots point at an extra column V.
 */
function logitBias(z: string, io: DeviceSamplingInputs, V: number, p: string, g: Graph): string {
  if (!io.biasIds || !io.biasValues) throw new Error('device sampling: biasSlots > 0 needs the biasIds and biasValues inputs');
  const op = (type: string, inputs: string[], name: string, attrs: Parameters<Graph['op1']>[2] = {}) =>
    g.op1(type, inputs, attrs, `${p}/bias/${name}`);
  const f64 = (v: number) => g.constant('float64', [v], []);
  const padded = op('Pad', [z, g.constant('int64', [0, 0, 0, 1]), g.constant('float32', [-Infinity], [])], 'Pad'); // [B, V + 1]
  const old = op('Cast', [op('GatherElements', [padded, io.biasIds], 'GatherElements', { axis: { i: 1 } })], 'old/Cast', {
    to: { i: DOUBLE },
  }); // [B, Kb]
  const sum = op('Add', [old, io.biasValues], 'Add');
  // saturated in float64, stored to float32, then the special cases selected in float32 (CUDA's Where has no float64)
  const clamped = op('Cast', [op('Min', [op('Max', [sum, f64(-FLOAT32_MAX)], 'Max'), f64(FLOAT32_MAX)], 'Min')], 'new/Cast', {
    to: { i: FLOAT },
  });
  const minusInf = g.constant('float32', [-Infinity], []);
  const keepBan = op('Where', [op('Equal', [sum, f64(-Infinity)], 'ban'), minusInf, clamped], 'ban/Where');
  const noNaN = op('Where', [op('Equal', [sum, sum], 'nan'), keepBan, minusInf], 'nan/Where');
  const value = op('Where', [op('Equal', [old, f64(-Infinity)], 'masked'), minusInf, noNaN], 'masked/Where');
  const written = op('ScatterElements', [padded, io.biasIds, value], 'ScatterElements', { axis: { i: 1 } });
  return op('Slice', [written, g.constant('int64', [0]), g.constant('int64', [V]), g.constant('int64', [1])], 'Slice'); // [B, V]
}

/**
 * Declares the block's inputs (SAMPLING_IO names) on `g`, appends it after `logits` and declares its outputs:
 * for standalone sampling graphs (tests) and for graphs that take the table's names as they are.
 */
export function addDeviceSampling(g: Graph, logits: string, opts: DeviceSamplingOptions): void {
  const kb = opts.biasSlots ?? 0;
  const K = Math.min(opts.topLogprobs ?? 20, opts.candidates ?? 1024, opts.vocab);
  const input = (name: keyof typeof SAMPLING_IO, dims: (string | number)[]) =>
    g.input(name, SAMPLING_IO[name].type, dims, SAMPLING_IO[name].doc);
  const io: DeviceSamplingInputs = {
    temperature: input('sample_temperature', ['B']),
    topK: input('sample_top_k', ['B']),
    topP: input('sample_top_p', ['B']),
    minP: input('sample_min_p', ['B']),
    uniform: input('sample_uniform', ['B']),
    ...(kb > 0 ? { biasIds: input('sample_bias_ids', ['B', kb]), biasValues: input('sample_bias_values', ['B', kb]) } : {}),
    ...(opts.penalties
      ? {
          penalties: {
            repetition: input('sample_repetition_penalty', ['B']),
            presence: input('sample_presence_penalty', ['B']),
            frequency: input('sample_frequency_penalty', ['B']),
            seen: input('sample_seen', ['B', opts.vocab]),
            counts: input('sample_counts', ['B', opts.vocab]),
          },
        }
      : {}),
  };
  const out = emitDeviceSampling(g, logits, io, opts);
  const output = (value: string, name: keyof typeof SAMPLING_IO, dims: (string | number)[]) =>
    g.output(value, name, SAMPLING_IO[name].type, dims, SAMPLING_IO[name].doc);
  output(out.token, 'sample_token', ['B']);
  output(out.logprob, 'sample_logprob', ['B']);
  output(out.topIds, 'sample_top_ids', ['B', K]);
  output(out.topLogprobs, 'sample_top_logprobs', ['B', K]);
  if (out.seenNext && out.countsNext) {
    output(out.seenNext, 'sample_seen_next', ['B', opts.vocab]);
    output(out.countsNext, 'sample_counts_next', ['B', opts.vocab]);
  }
}
