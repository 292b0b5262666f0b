/**
 * Sampling defaults that a λ preset carries (e.g. `deep`: λ = -0.5 with a larger `max_tokens`), and how they
 * fill a request: a field the client set always wins; a preset only fills what was left unset.
 */
import { z } from 'zod';
import { numberField } from './fields.ts';
import { SAMPLING_RULES } from './generation-fields.ts';

/** Sampling fields a preset may default. */
export interface SamplingDefaults {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  repetition_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
}

/** Validates preset sampling defaults (admin input); unknown keys are refused so a typo is not silently ignored. */
export const samplingDefaultsSchema = z.strictObject(
  {
    temperature: numberField(SAMPLING_RULES.temperature).optional(),
    top_p: numberField(SAMPLING_RULES.top_p).optional(),
    top_k: numberField(SAMPLING_RULES.top_k).optional(),
    min_p: numberField(SAMPLING_RULES.min_p).optional(),
    max_tokens: numberField({ min: 1, integer: true }).optional(),
    repetition_penalty: numberField(SAMPLING_RULES.repetition_penalty).optional(),
    presence_penalty: numberField(SAMPLING_RULES.presence_penalty).optional(),
    frequency_penalty: numberField(SAMPLING_RULES.frequency_penalty).optional(),
  },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `has unknown fields ${iss.keys.map((k) => `"${k}"`).join(', ')}`
        : 'must be an object of sampling fields',
  },
);

/** The keys of {@link SamplingDefaults}, in a fixed order. */
export const SAMPLING_DEFAULT_KEYS = [
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'max_tokens',
  'repetition_penalty',
  'presence_penalty',
  'frequency_penalty',
] as const;

/** Returns a copy of `request` with every unset field of `defaults` filled in; fields the client set are kept. */
export function applySamplingDefaults<T extends Partial<Record<keyof SamplingDefaults, number>>>(
  request: T,
  defaults: SamplingDefaults,
): T {
  const out: T = { ...request };
  for (const key of SAMPLING_DEFAULT_KEYS) {
    const value = defaults[key];
    if (value !== undefined && out[key] === undefined) (out as Record<string, number>)[key] = value;
  }
  return out;
}
