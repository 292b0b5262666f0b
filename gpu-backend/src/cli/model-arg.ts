/**
 * The one place where a model argument (`--model`, `--reference`, `--aligned` of the CLI and of `npm start`) becomes
 * a checkpoint folder: a local folder, which must exist, or a Hugging Face model id (`org/name` where no such folder
 * exists), found in the hub cache or downloaded into it (see checkpoint/hub/).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { downloadReporter, isModelId, resolveModelSource } from '../checkpoint/hub/index.ts';
import { UsageError } from './usage-error.ts';

/** Options of `resolveModelArg`. */
export interface ResolveModelOptions {
  /** the option the value came from, for messages (e.g. `--model`) */
  option?: string;
  /** progress and notes (e.g. a download) */
  log?: (message: string) => void;
  /** branch, tag or commit of a Hugging Face model id (default main) */
  revision?: string;
}

/** A usage error when `--revision` is given but none of the model arguments is a Hugging Face model id. */
export function checkRevisionUse(values: (string | undefined)[], revision: string | undefined): void {
  if (revision !== undefined && !values.some((v) => v !== undefined && isModelId(v, process.cwd()))) {
    throw new UsageError('--revision applies to Hugging Face model ids (org/name), but the model options name folders');
  }
}

/** The absolute checkpoint folder that a model argument names; a UsageError when there is none. */
export async function resolveModelArg(value: string, opts: ResolveModelOptions = {}): Promise<string> {
  if (isModelId(value, process.cwd()))
    return resolveModelSource(value, { revision: opts.revision, onProgress: downloadReporter() });
  const dir = resolve(value);
  if (!existsSync(dir)) throw new UsageError(`${opts.option ?? '--model'} ${value}: no such folder`);
  if (!statSync(dir).isDirectory())
    throw new UsageError(`${opts.option ?? '--model'} ${value}: not a folder (give the checkpoint's folder, with config.json)`);
  return dir;
}
