/**
 * `--model deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B`: a model option's value becomes a folder. A local folder
 * always wins; `org/name` with no such folder is a Hugging Face model id, found in the hub cache or downloaded into
 * it (settings.ts says which variables count). With HF_HUB_OFFLINE the cache alone answers.
 */
import { join, resolve } from 'node:path';
import { cachedSnapshot, snapshotDir, writeRef } from './cache.ts';
import { downloadSnapshot, HubUnreachableError, remoteCommit, type DownloadEvent, type DownloadTimeouts } from './download.ts';
import { checkRevision, isCommitHash, isModelId, ModelSourceError, repoFolderName } from './model-id.ts';
import { missingModelFiles } from './model-files.ts';
import { hubSettings, type HubOptions, type HubSettings } from './settings.ts';

/** Options of `resolveModelSource`. */
export interface ResolveOptions extends HubOptions, DownloadTimeouts {
  /** branch, tag or commit hash of a model id (default main) */
  revision?: string;
  /** folder that relative paths are relative to (default the working directory) */
  baseDir?: string;
  onProgress?: (e: DownloadEvent) => void;
}

/** Turns an error of the hub into one that says what to do. */
async function explain(
  err: unknown,
  id: string,
  revision: string,
  s: HubSettings,
  repoDir: string,
  folder: string,
): Promise<Error> {
  const { HubApiError } = await import('@huggingface/hub');
  const nf = notFolder(folder);
  if (err instanceof HubApiError) {
    if (err.statusCode === 404) return new ModelSourceError(`no model "${id}" at revision "${revision}" on ${s.endpoint} ${nf}`);
    if (err.statusCode === 401) {
      const what = s.token ? 'the token in use (HF_TOKEN) cannot read it' : 'set HF_TOKEN to an access token that can read it';
      return new ModelSourceError(
        `${s.endpoint} refused "${id}" (401): the id is misspelt, or the model is private or gated and ${what} ${nf}`,
      );
    }
    if (err.statusCode === 403)
      return new ModelSourceError(
        `${s.endpoint} refused "${id}" (403): the model is gated; accept its conditions at ${s.endpoint}/${id} and use a token of that account in HF_TOKEN`,
      );
    return new ModelSourceError(`${id}: ${s.endpoint} answered ${err.statusCode}: ${err.message}`);
  }
  if (err instanceof HubUnreachableError) {
    return new ModelSourceError(
      `${err.message}, and the cache ${repoDir} has no complete copy of "${id}" at "${revision}": connect, set HF_ENDPOINT to a mirror, or pass a local folder`,
    );
  }
  if (err instanceof ModelSourceError) return err;
  return new ModelSourceError(`${id}: ${(err as Error).message ?? String(err)}`);
}

/**
 * The absolute folder a model option names: `value` itself (relative to `baseDir`) unless it is a model id, else the
 * id's snapshot in the hub cache, downloaded first when needed and allowed. A branch or tag is looked up on the hub
 * (a complete cached copy serves when the hub cannot be reached or answers with an error); a commit hash with a
 * complete cached copy needs no network.
 */
export async function resolveModelSource(value: string, opts: ResolveOptions = {}): Promise<string> {
  const baseDir = opts.baseDir ?? process.cwd();
  const folder = resolve(baseDir, value);
  if (!isModelId(value, baseDir)) return folder;
  const revision = opts.revision ?? 'main';
  checkRevision(revision);
  const s = hubSettings(opts);
  const repoDir = join(s.cacheDir, repoFolderName(value));
  const cached = cachedSnapshot(repoDir, revision);
  const complete = cached !== null && cached.missing.length === 0;
  if (complete && (s.offline || isCommitHash(revision))) return cached.dir;
  if (s.offline) {
    const partial = cached ? ` (snapshot ${cached.commit} lacks ${cached.missing.join(', ')})` : '';
    throw new ModelSourceError(
      `"${value}" at revision "${revision}" is not in the Hugging Face cache ${repoDir}${partial} and HF_HUB_OFFLINE forbids downloading it ${notFolder(folder)}: ` +
        'unset HF_HUB_OFFLINE, point HF_HUB_CACHE (or HF_HOME) at a cache that has it, or pass a local folder',
    );
  }
  try {
    let commit: string;
    try {
      commit = await remoteCommit(value, revision, s, opts);
    } catch (err) {
      // as huggingface_hub does: a complete cached copy serves when the hub cannot say where the branch points now
      if (!complete) throw err;
      const why =
        err instanceof HubUnreachableError
          ? err.message
          : `${s.endpoint} could not be asked (${(await explain(err, value, revision, s, repoDir, folder)).message})`;
      opts.onProgress?.({ type: 'note', message: `${why}; using the cached "${value}" at ${cached.commit}` });
      return cached.dir;
    }
    const dir = snapshotDir(repoDir, commit);
    if (missingModelFiles(dir).length === 0) {
      writeRef(repoDir, revision, commit);
      return dir;
    }
    return await downloadSnapshot(value, revision, commit, repoDir, s, opts.onProgress, opts);
  } catch (err) {
    throw await explain(err, value, revision, s, repoDir, folder);
  }
}

function notFolder(folder: string): string {
  return `(and there is no folder ${folder})`;
}
