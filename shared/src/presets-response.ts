/**
 * The answer of the edge's `GET /v1/presets` (worker/src/routes/presets.ts), as the route writes it and the
 * playground (worker/src/playground/client/) reads it.
 */
import type { SamplingDefaults } from './sampling-defaults.ts';

/** One preset as listed to a client. */
export interface PresetInfo {
  name: string;
  /** The λ a request with this preset runs at (the stored λ clamped into the range). */
  lambda: number;
  /** Whether the stored λ lies outside the range and was clamped. */
  clamped: boolean;
  /** Sampling defaults the preset fills into unset request fields. */
  sampling: SamplingDefaults;
  /** The named adapter its λ applies to (only when it names one). */
  adapter?: string;
  /** Its mix, each λ clamped into its adapter's range (only when it has one). */
  mix?: Record<string, number>;
}

/** One named adapter of the model as the tenant may use it. */
export interface AdapterInfo {
  name: string;
  /** Whether the tenant's policy lets it use the adapter (in `adapter` or `mix`). */
  allowed: boolean;
  /** The λ range on this adapter: its own bounds over `lambda_range`. */
  lambda_range: { min: number; max: number };
}

/** The answer of `GET /v1/presets`. */
export interface PresetsResponse {
  object: 'presets';
  model: string;
  lambda_range: { min: number; max: number };
  allow_explicit_lambda: boolean;
  out_of_range: 'clamp' | 'reject';
  /** The tenant's default preset for this model, or null. */
  default_preset: string | null;
  /** The λ of a request that sets neither `lambda` nor `preset` (and has no stored user preference). */
  default_lambda: number;
  /** The model's named adapters (the first is its default), when its catalogue entry lists them. */
  adapters?: AdapterInfo[];
  data: PresetInfo[];
}
