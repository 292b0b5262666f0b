/**
 * Blockwise weight quantization for ONNX Runtime's `com.microsoft.MatMulNBits` and `GatherBlockQuantized`.
 *
 * A weight is taken as rows [N, K] (a linear layer's HF layout [out, in]; an embedding table [V, D]) and quantized
 * along K in blocks of `blockSize` values, each block with its own scale:
 *
 *   scale = max |w| over the block / qmax          qmax = 2^(bits−1) − 1 (7 for int4, 127 for int8)
 *   q     = clamp(round(w / scale), −qmax, qmax) + 2^(bits−1)     stored unsigned (the ops' default zero point)
 *   ŵ     = (q − 2^(bits−1)) · scale
 *
 * Symmetric round-to-nearest, no zero-point tensor:
 * - the ops' default zero point (2^(bits−1): 8 for 4 bits, 128 for 8 bits; ContribOperators.md) is the one used, so
 *   no zero points are stored or read per step (fewer bytes is the point of the format);
 * - zero stays exactly zero: a zero weight gives q = zero point, ŵ = 0 whatever the block's scale, and an all-zero
 *   block has scale 0 (no division: its q are the zero point). An expanded, untrained InRa model's zero o_proj and
 *   down_proj stay exactly zero, so its identity holds in the quantized graphs too;
 * - |w − ŵ| ≤ scale / 2 for every weight (w / scale ∈ [−qmax, qmax] before rounding, so the clamp never bites).
 * The code −2^(bits−1) (0 unsigned) is unused: one level of 16 for int4, the price of symmetry.
 *
 * Packing (MatMulNBits input B, uint8 [N, k_blocks, blockSize·bits/8]): values in K order, for 4 bits two per byte,
 * the first in the low nibble. A row whose K is not a multiple of the block size is padded with zero weights
 * (the zero point) to whole blocks. With K a multiple of the block size the same bytes are GatherBlockQuantized's
 * uint8 data [N, K·bits/8] (packed along the last axis, low-order bits first) with quantize_axis 1, and the same
 * scales [N, k_blocks]: a tied model's embedding and lm_head share one quantized table.
 */

/** How a model's weights are stored in its graphs. */
export type WeightFormat = 'float32' | 'float16' | 'int8' | 'int4';

export const WEIGHT_FORMATS: readonly WeightFormat[] = ['float32', 'float16', 'int8', 'int4'];

/** The default number of weights per quantization block. */
export const DEFAULT_BLOCK_SIZE = 32;

/** What a graph quantizes and how (absent from a GraphSpec: float weights). */
export interface QuantSpec {
  bits: 4 | 8;
  /** weights per block along K: a power of two ≥ 16 (MatMulNBits' rule) */
  blockSize: number;
  /** MatMulNBits accuracy_level: 0 computes with A in its float type, 4 lets the CPU kernel quantize A to int8 */
  accuracyLevel: 0 | 4;
  /** keep the vocabulary projection in the graph's float type */
  floatLmHead?: boolean;
  /** keep the embedding table in the graph's float type */
  floatEmbedding?: boolean;
  /** keep the InRa adapter layers in the graph's float type */
  floatAdapter?: boolean;
}

/** The bits of a quantized format, or null for a float one. */
export function formatBits(format: WeightFormat): 4 | 8 | null {
  return format === 'int4' ? 4 : format === 'int8' ? 8 : null;
}

/** Checks a block size: a power of two, at least 16 (what MatMulNBits and GatherBlockQuantized take). */
export function checkBlockSize(blockSize: number): number {
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new Error(`block size ${blockSize} is not a power of two of at least 16 (MatMulNBits needs one)`);
  }
  return blockSize;
}

/** Quantized rows: packed codes [N, kBlocks, blobBytes] and scales [N, kBlocks]. */
export interface QuantizedRows {
  N: number;
  K: number;
  bits: 4 | 8;
  blockSize: number;
  kBlocks: number;
  /** bytes per block: blockSize · bits / 8 */
  blobBytes: number;
  data: Uint8Array;
  scales: Float32Array;
}

/**
 * Quantizes rows [N, K] (row-major) along K. `roundScale` rounds each scale to the type it is stored in
 * (float16 for float16 graphs) before the codes are computed from it, so the stored scale is the one the bound holds for.
 */
export function quantizeRows(
  w: ArrayLike<number>,
  N: number,
  K: number,
  bits: 4 | 8,
  blockSize: number,
  roundScale: (s: number) => number = Math.fround,
): QuantizedRows {
  checkBlockSize(blockSize);
  if (w.length !== N * K) throw new Error(`quantize: ${w.length} values for [${N}, ${K}]`);
  const kBlocks = Math.ceil(K / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  const qmax = (1 << (bits - 1)) - 1;
  const zp = 1 << (bits - 1);
  const data = new Uint8Array(N * kBlocks * blobBytes);
  const scales = new Float32Array(N * kBlocks);
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      let amax = 0;
      for (let k = k0; k < k1; k++) {
        const a = Math.abs(w[row + k]);
        if (a > amax) amax = a;
      }
      if (!Number.isFinite(amax)) throw new Error(`quantize: row ${n} has a non-finite weight`);
      let scale = roundScale(amax / qmax);
      // a scale rounded down in its storage type could push |w| / scale past qmax + 1/2: round it up instead
      if (scale > 0 && amax / scale > qmax + 0.5) scale = roundScale(scale * (1 + 2 ** -9));
      scales[n * kBlocks + b] = scale;
      const inv = scale > 0 ? 1 / scale : 0;
      const blob = (n * kBlocks + b) * blobBytes;
      for (let j = 0; j < blockSize; j++) {
        const k = k0 + j;
        let q = zp;
        if (k < k1 && inv > 0) q = zp + Math.max(-qmax, Math.min(qmax, Math.round(w[row + k] * inv)));
        if (bits === 8) data[blob + j] = q;
        else data[blob + (j >> 1)] |= (j & 1) === 0 ? q : q << 4;
      }
    }
  }
  return { N, K, bits, blockSize, kBlocks, blobBytes, data, scales };
}

/** The weights quantized rows stand for: ŵ [N, K] = (q − zero point) · scale. */
export function dequantizeRows(q: QuantizedRows): Float32Array {
  const { N, K, bits, blockSize, kBlocks, blobBytes, data, scales } = q;
  const zp = 1 << (bits - 1);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / blockSize);
      const j = k - b * blockSize;
      const blob = (n * kBlocks + b) * blobBytes;
      const code = bits === 8 ? data[blob + j] : (data[blob + (j >> 1)] >> ((j & 1) * 4)) & 0xf;
      out[n * K + k] = (code - zp) * scales[n * kBlocks + b];
    }
  }
  return out;
}

/** Quantize then dequantize: the float weights a quantized graph computes with (for reference runs). */
export function roundTrip(w: ArrayLike<number>, N: number, K: number, bits: 4 | 8, blockSize: number): Float32Array {
  return dequantizeRows(quantizeRows(w, N, K, bits, blockSize));
}

/** A model's weight format as configured (models.json `weights`, `--weights`), before the device is known. */
export interface WeightOptions {
  format: WeightFormat;
  /** int8/int4: weights per block (default 32) */
  blockSize?: number;
  /** int8/int4: parts kept in the graph's float type */
  keepFloat?: ('lm_head' | 'embedding' | 'adapter')[];
  /**
   * int8/int4: MatMulNBits accuracy_level. Default 4 on the CPU: ONNX Runtime 1.29's CPU kernel then quantizes the
   * activations to int8 per block and runs integer dot products; with 0 (activations in float) its 8-bit path
   * measured ~100× slower (bench/quantized-bench.ts: small preset, 1120 ms/step against 10.8 ms). 0 on CUDA.
   */
  accuracyLevel?: 0 | 4;
}

/**
 * The float type and quantization of a graph for configured weights on a device. Without a format the device
 * decides (float32 on the CPU, float16 on CUDA); int8/int4 keep the device's float type for activations and scales.
 */
export function graphWeights(
  weights: WeightOptions | undefined,
  device: 'cpu' | 'cuda',
): { floatType: 'float32' | 'float16'; quant?: QuantSpec } {
  const deviceFloat = device === 'cuda' ? 'float16' : 'float32';
  if (!weights) return { floatType: deviceFloat };
  if (weights.format === 'float32' || weights.format === 'float16') return { floatType: weights.format };
  const keep = new Set(weights.keepFloat ?? []);
  const quant: QuantSpec = {
    bits: formatBits(weights.format)!,
    blockSize: checkBlockSize(weights.blockSize ?? DEFAULT_BLOCK_SIZE),
    accuracyLevel: weights.accuracyLevel ?? (device === 'cpu' ? 4 : 0),
  };
  if (keep.has('lm_head')) quant.floatLmHead = true;
  if (keep.has('embedding')) quant.floatEmbedding = true;
  if (keep.has('adapter')) quant.floatAdapter = true;
  return { floatType: deviceFloat, quant };
}

/** How a graph's weights read in logs and folder names: float32, float16, int8 (float32, block 32) … */
export function weightsLabel(floatType: 'float32' | 'float16', quant?: QuantSpec): string {
  return quant ? `int${quant.bits}, ${floatType} scales, block ${quant.blockSize}` : floatType;
}
