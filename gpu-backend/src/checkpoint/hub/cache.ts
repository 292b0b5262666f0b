/**
 * Reading the hub cache without the network. Its layout (shared with huggingface_hub and transformers):
 *
 *   <cache>/models--org--name/
 *     refs/main                      the commit hash the branch or tag `main` pointed at when last fetched
 *     snapshots/<commit>/<file>      symlinks into blobs/ (or plain files)
 *     blobs/<etag>                   file contents, named by their sha256 (LFS) or git blob id
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isCommitHash } from './model-id.ts';
import { missingModelFiles } from './model-files.ts';

/** A snapshot found in the cache. */
export interface CachedSnapshot {
  commit: string;
  dir: string;
  /** files a loadable model needs that the snapshot lacks (empty: complete) */
  missing: string[];
}

/** The snapshot folder of a commit. */
export function snapshotDir(repoDir: string, commit: string): string {
  return join(repoDir, 'snapshots', commit);
}

/** The commit a revision names according to the cache: a commit hash names itself, a branch or tag its refs file. */
export function cachedCommit(repoDir: string, revision: string): string | null {
  if (isCommitHash(revision)) return revision;
  const ref = join(repoDir, 'refs', revision);
  if (!existsSync(ref)) return null;
  const commit = readFileSync(ref, 'utf8').trim();
  return isCommitHash(commit) ? commit : null;
}

/** The cached snapshot of a revision, or null when the cache has none. */
export function cachedSnapshot(repoDir: string, revision: string): CachedSnapshot | null {
  const commit = cachedCommit(repoDir, revision);
  if (!commit) return null;
  const dir = snapshotDir(repoDir, commit);
  if (!existsSync(dir)) return null;
  return { commit, dir, missing: missingModelFiles(dir) };
}

/** Records that a branch or tag points at `commit` (a commit hash needs no ref). */
export function writeRef(repoDir: string, revision: string, commit: string): void {
  if (revision === commit) return;
  const ref = join(repoDir, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  writeFileSync(ref, commit);
}
