import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readModelConfig } from '../checkpoint/config.ts';
import type { ModelSource } from '../engine/model-loader.ts';
import type { Device } from '../ort/session.ts';

/** A command-line mistake: printed with the command's usage, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses argv for one command; unknown options are usage errors. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: positionals > 0, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(`expected ${positionals} positional argument(s), got ${parsed.positionals.length}`);
  return parsed;
}

/** A numeric option, checked. */
export function num(value: string | undefined, name: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a finite number, got "${value}"`);
  return n;
}

/** A positive integer option, checked. */
export function positiveInt(value: string | undefined, name: string, fallback?: number): number {
  const n = num(value, name, fallback);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

/** The --device option: auto (the default), cpu or cuda. */
export function deviceOption(value: string | undefined): Device | 'auto' {
  const device = value ?? 'auto';
  if (device !== 'auto' && device !== 'cpu' && device !== 'cuda') throw new UsageError(`--device must be auto, cpu or cuda, got "${device}"`);
  return device;
}

/** The options that choose a model, shared by logits, generate and build-graph. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  inra: { type: 'boolean' },
  'adapter-layers': { type: 'string' },
  reference: { type: 'string' },
  aligned: { type: 'string' },
} as const;

/**
 * Turns the model options into a source: fusion with --reference and --aligned, else one checkpoint (InRa with
 * --inra or when its config.json carries realign's adapter marker).
 */
export function modelSource(v: { model?: string; inra?: boolean; 'adapter-layers'?: string; reference?: string; aligned?: string }): ModelSource {
  if (v.reference || v.aligned) {
    if (!v.reference || !v.aligned) throw new UsageError('fusion needs both --reference <dir> and --aligned <dir>');
    if (v.model) throw new UsageError('give either --model or --reference/--aligned, not both');
    return { mode: 'fusion', reference: v.reference, aligned: v.aligned };
  }
  if (!v.model) throw new UsageError('--model <dir> is required (or --reference and --aligned for fusion)');
  const inra = v.inra === true || readModelConfig(v.model).adapterLayers > 0;
  return inra ? { mode: 'inra', model: v.model, inraAdapterLayers: v['adapter-layers'] ? num(v['adapter-layers'], 'adapter-layers') : undefined } : { mode: 'single', model: v.model };
}
