/**
 * Sampling parameters of one sequence, named as on the OpenAI wire. They arrive validated (shared/ checks
 * ranges at the HTTP boundary); everything here trusts them. All of them act on the *blended* logits.
 */
export interface SamplingParams {
  /** softmax temperature; 0 = greedy (argmax, ties to the lowest id) */
  temperature: number;
  /** keep the k most likely tokens; 0 or -1 = off */
  top_k: number;
  /** keep the smallest set of most likely tokens whose probability reaches top_p; 1 = off */
  top_p: number;
  /** drop tokens less likely than min_p × the most likely one; 0 = off */
  min_p: number;
  /** vLLM/HF: logits of tokens seen in prompt or output are divided by it when positive, multiplied when negative; 1 = off */
  repetition_penalty: number;
  /** OpenAI: subtracted once from the logit of every token generated at least once */
  presence_penalty: number;
  /** OpenAI: subtracted per occurrence from the logit of every generated token */
  frequency_penalty: number;
  /** token id (as a decimal string, like the wire's JSON keys) → added to that token's logit */
  logit_bias: Readonly<Record<string, number>>;
  /** seed of the sequence's own random stream; null = a random seed */
  seed: number | null;
  /** return the chosen token's log-probability */
  logprobs: boolean;
  /** also return this many most likely tokens with their log-probabilities (0..20; needs logprobs) */
  top_logprobs: number;
}

/** OpenAI's defaults: temperature 1, nothing truncated or penalised. */
export const DEFAULT_SAMPLING_PARAMS: Readonly<SamplingParams> = Object.freeze({
  temperature: 1,
  top_k: 0,
  top_p: 1,
  min_p: 0,
  repetition_penalty: 1,
  presence_penalty: 0,
  frequency_penalty: 0,
  logit_bias: Object.freeze({}),
  seed: null,
  logprobs: false,
  top_logprobs: 0,
});

/** Fills the fields a request left out with `DEFAULT_SAMPLING_PARAMS`. */
export function samplingParams(partial: Partial<SamplingParams> = {}): SamplingParams {
  const out: SamplingParams = { ...DEFAULT_SAMPLING_PARAMS };
  for (const key of Object.keys(partial) as (keyof SamplingParams)[]) {
    if (partial[key] !== undefined) Object.assign(out, { [key]: partial[key] });
  }
  return out;
}
