/**
 * The interface of the in-graph sampling block (device-sampling.ts): its options, the per-row inputs and the outputs
 * it names, the graph inputs and outputs it declares, and the row status values of its token output.
 */
import type { DevicePenaltyInputs } from './device-penalties.ts';

/** Row status values of the token output. */
export const NO_FINITE_LOGIT = -1;
export const HOST_DECIDES = -2;

/** Options of the sampling block. */
export interface DeviceSamplingOptions {
  /** vocabulary size V (the logits' last dimension) */
  vocab: number;
  /** element type of the logits tensor */
  logitsType: 'float32' | 'float16';
  /** ranked candidates taken from the vocabulary (TopK k); default 1024, capped at V */
  candidates?: number;
  /** top logprobs returned per row (K); default 20, capped at the candidates */
  topLogprobs?: number;
  /** logit_bias slots per row; 0 (default) = no logit_bias inputs */
  biasSlots?: number;
  /** repetition / presence / frequency penalties from device-resident state (default off) */
  penalties?: boolean;
  /** node-name prefix; default '/sample' */
  prefix?: string;
}

/** The per-row inputs of the block, by value name. */
export interface DeviceSamplingInputs {
  temperature: string; // float64 [B]
  topK: string; // int64 [B]
  topP: string; // float64 [B]
  minP: string; // float64 [B]
  uniform: string; // float64 [B]
  biasIds?: string; // int64 [B, Kb]
  biasValues?: string; // float64 [B, Kb]
  penalties?: DevicePenaltyInputs;
}

/** The values the block produces. */
export interface DeviceSamplingOutputs {
  token: string; // int64 [B]
  logprob: string; // float64 [B]
  topIds: string; // int64 [B, K]
  topLogprobs: string; // float64 [B, K]
  /** with penalties: the state after this step's token */
  seenNext?: string; // bool [B, V]
  countsNext?: string; // float32 [B, V]
}

/** The graph inputs and outputs `addDeviceSampling` declares, in one table (Kb = biasSlots, K = top logprobs). */
export const SAMPLING_IO = {
  sample_temperature: {
    type: 'float64',
    dims: ['B'],
    doc: 'temperature of each output row; 0 (or one whose inverse overflows) = greedy',
  },
  sample_top_k: { type: 'int64', dims: ['B'], doc: 'top_k of each output row; ≤ 0 or ≥ V = off' },
  sample_top_p: { type: 'float64', dims: ['B'], doc: 'top_p of each output row; 1 = off' },
  sample_min_p: { type: 'float64', dims: ['B'], doc: 'min_p of each output row; 0 = off' },
  sample_uniform: {
    type: 'float64',
    dims: ['B'],
    doc: "u in [0, 1): the row's next number from its seeded stream (any value for greedy rows)",
  },
  sample_bias_ids: {
    type: 'int64',
    dims: ['B', 'Kb'],
    doc: 'logit_bias token ids of each row; unused slots (and ids outside [0, V)) hold V',
  },
  sample_bias_values: {
    type: 'float64',
    dims: ['B', 'Kb'],
    doc: 'logit_bias values matching sample_bias_ids (0 in unused slots)',
  },
  sample_repetition_penalty: { type: 'float64', dims: ['B'], doc: 'repetition_penalty of each row; 1 = off' },
  sample_presence_penalty: { type: 'float64', dims: ['B'], doc: 'presence_penalty of each row; 0 = off' },
  sample_frequency_penalty: { type: 'float64', dims: ['B'], doc: 'frequency_penalty of each row; 0 = off' },
  sample_seen: { type: 'bool', dims: ['B', 'V'], doc: 'per row: token in the prompt or generated so far (device-resident)' },
  sample_counts: { type: 'float32', dims: ['B', 'V'], doc: 'per row: times each token was generated so far (device-resident)' },
  sample_seen_next: { type: 'bool', dims: ['B', 'V'], doc: 'sample_seen after this step (unchanged for rows with token < 0)' },
  sample_counts_next: {
    type: 'float32',
    dims: ['B', 'V'],
    doc: 'sample_counts after this step (unchanged for rows with token < 0)',
  },
  sample_token: {
    type: 'int64',
    dims: ['B'],
    doc: 'chosen token; −1: no finite logit (the row fails); −2: the host must sample this row',
  },
  sample_logprob: {
    type: 'float64',
    dims: ['B'],
    doc: 'log-probability of the chosen token under softmax(z / T) (T = 1 when greedy); NaN when token < 0',
  },
  sample_top_ids: { type: 'int64', dims: ['B', 'K'], doc: 'the K most likely tokens, best first, ties to the lower id' },
  sample_top_logprobs: { type: 'float64', dims: ['B', 'K'], doc: 'their log-probabilities; −∞ past the last finite logit' },
} as const;
