import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** A Hugging Face model id as people write it: `org/name`, each part letters, digits and `._-`. */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Whether `value` names a model on the hub rather than a folder: it is `org/name` and no folder of that name exists
 * under `baseDir`. A local folder always wins, and `./org/name` (or any absolute path) is always a path.
 */
export function isModelId(value: string, baseDir: string): boolean {
  return MODEL_ID.test(value) && !existsSync(resolve(baseDir, value));
}

/** The hub cache's folder for a model repo: `models--org--name`. */
export function repoFolderName(id: string): string {
  return `models--${id.split('/').join('--')}`;
}

/** A full commit hash, which names one immutable snapshot. */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** A model source that cannot be found, fetched or trusted; the message says what to do about it. */
export class ModelSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelSourceError';
  }
}

/** Checks a revision (branch, tag or commit) before it becomes part of a cache path. */
export function checkRevision(revision: string): void {
  const parts = revision.split('/');
  if (revision === '' || revision.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new ModelSourceError(`revision "${revision}" is not a branch, tag or commit name`);
  }
}
