/**
 * Downloading a model's files from the hub into the hub cache, through @huggingface/hub: `modelInfo` turns a branch
 * or tag into a commit, `listFiles` lists the repo's top level at that commit, `downloadFile` streams each file
 * (`resolve/<commit>/<path>`, following the hub's redirect to its CDN for LFS files). Files land as huggingface_hub
 * lays them out (see cache.ts), so Python tools and realign share one cache.
 *
 * Each file is streamed to a temporary name, checked against the size and hash the listing gives (sha256 for LFS
 * files, the git blob id for the others) and only then renamed into blobs/, so an interrupted or altered download
 * never leaves a file that looks complete. The refs/<revision> file is written last.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { ListFileEntry } from '@huggingface/hub';
import { snapshotDir, writeRef } from './cache.ts';
import { ModelSourceError } from './model-id.ts';
import { indexShards, SINGLE_WEIGHTS, TEXT_FILES, WEIGHT_INDEX } from './model-files.ts';
import type { HubSettings } from './settings.ts';

/** What a download reports as it goes. */
export type DownloadEvent =
  | {
      type: 'plan';
      id: string;
      commit: string;
      dir: string;
      files: { path: string; size: number; present: boolean }[];
      totalBytes: number;
      presentBytes: number;
    }
  | { type: 'bytes'; path: string; fileBytes: number; fileSize: number; doneBytes: number; totalBytes: number }
  | { type: 'file'; path: string; size: number; done: number; count: number }
  | { type: 'done'; id: string; dir: string; downloadedBytes: number; seconds: number }
  | { type: 'note'; message: string };

/** Timeouts of a download. */
export interface DownloadTimeouts {
  /** how long a request may wait for its response headers (default 30 s) */
  connectMs?: number;
  /** how long a file's body may send nothing before the download is given up (default 60 s) */
  stallMs?: number;
}

/** The hub cannot be reached (as opposed to answering with an error): a cached copy may stand in. */
export class HubUnreachableError extends ModelSourceError {
  constructor(message: string) {
    super(message);
    this.name = 'HubUnreachableError';
  }
}

interface RemoteFile {
  path: string;
  size: number;
  /** blob name in the cache: the LFS sha256, else the git blob id */
  etag: string;
  lfs: boolean;
}

type Hub = typeof import('@huggingface/hub');

/** A fetch that gives up when no response headers arrive within `ms` (the body is watched by the stall timer). */
function timedFetch(ms: number): typeof fetch {
  return async (input, init) => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    try {
      return await fetch(input, { ...init, signal: ctl.signal });
    } catch (err) {
      const url = input instanceof Request ? input.url : String(input);
      if (ctl.signal.aborted) throw new HubUnreachableError(`no answer from ${new URL(url).origin} within ${ms / 1000} s`);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new HubUnreachableError(
        `cannot reach ${new URL(url).origin} (${cause?.code ?? cause?.message ?? (err as Error).message})`,
      );
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Request parameters shared by every @huggingface/hub call. */
function requestParams(settings: HubSettings, t: DownloadTimeouts) {
  return { hubUrl: settings.endpoint, accessToken: settings.token, fetch: timedFetch(t.connectMs ?? 30_000) };
}

/** The commit a branch, tag or commit names on the hub. */
export async function remoteCommit(
  id: string,
  revision: string,
  settings: HubSettings,
  t: DownloadTimeouts = {},
): Promise<string> {
  const hub: Hub = await import('@huggingface/hub');
  const info = await hub.modelInfo({ name: id, revision, additionalFields: ['sha'], ...requestParams(settings, t) });
  if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha))
    throw new ModelSourceError(`${settings.endpoint} gave no commit hash for ${id} at "${revision}"`);
  return info.sha;
}

/** Counts, hashes and watches the bytes of one file on their way to disk. */
class Meter extends Transform {
  readonly hash: Hash;
  bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: RemoteFile,
    private readonly stallMs: number,
    private readonly onBytes: (bytes: number) => void,
  ) {
    super();
    this.hash = createHash(file.lfs ? 'sha256' : 'sha1');
    // the git blob id hashes a header, then the content
    if (!file.lfs) this.hash.update(`blob ${file.size}\0`);
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.destroy(new HubUnreachableError(`no data for ${this.stallMs / 1000} s while downloading ${this.file.path}`)),
      this.stallMs,
    );
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.arm();
    this.bytes += chunk.length;
    if (this.bytes > this.file.size)
      return done(
        new ModelSourceError(`${this.file.path}: the hub sent more than the ${this.file.size} bytes its listing gives`),
      );
    this.hash.update(chunk);
    this.onBytes(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    clearTimeout(this.timer);
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    clearTimeout(this.timer);
    done(err);
  }
}

/** Points a snapshot entry at its blob: a relative symlink, or a copy where symlinks are not allowed. */
function linkBlob(blob: string, pointer: string): void {
  rmSync(pointer, { force: true });
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch (err) {
    // another process linked it first: that link is as good as ours
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && existsSync(pointer)) return;
    copyFileSync(blob, pointer);
  }
}

/** One repo at one commit, being downloaded. */
class SnapshotDownload {
  private readonly snapshot: string;
  private readonly stallMs: number;

  constructor(
    private readonly hub: Hub,
    private readonly id: string,
    private readonly commit: string,
    private readonly repoDir: string,
    private readonly settings: HubSettings,
    private readonly timeouts: DownloadTimeouts,
  ) {
    this.snapshot = snapshotDir(repoDir, commit);
    this.stallMs = timeouts.stallMs ?? 60_000;
  }

  private get params() {
    return {
      repo: { type: 'model' as const, name: this.id },
      revision: this.commit,
      ...requestParams(this.settings, this.timeouts),
    };
  }

  /** The repo's top-level files at the commit. */
  async list(): Promise<Map<string, RemoteFile>> {
    const files = new Map<string, RemoteFile>();
    for await (const e of this.hub.listFiles(this.params) as AsyncGenerator<ListFileEntry>) {
      if (e.type !== 'file') continue;
      const etag = e.lfs?.oid ?? e.oid;
      if (!etag || !/^[0-9a-f]{40,64}$/.test(etag))
        throw new ModelSourceError(`${this.settings.endpoint}: the listing of ${this.id} gives ${e.path} no usable hash`);
      files.set(e.path, { path: e.path, size: e.lfs?.size ?? e.size, etag, lfs: e.lfs !== undefined });
    }
    return files;
  }

  pointer(f: RemoteFile): string {
    return join(this.snapshot, f.path);
  }

  /** Whether the snapshot already holds the file (or its blob does, which only needs a link). */
  present(f: RemoteFile): boolean {
    return existsSync(this.pointer(f)) || existsSync(join(this.repoDir, 'blobs', f.etag));
  }

  /** Fetches one file into blobs/ (checked) and links it into the snapshot. */
  async fetch(f: RemoteFile, onBytes: (bytes: number) => void = () => {}): Promise<void> {
    const pointer = this.pointer(f);
    if (existsSync(pointer)) return;
    const blob = join(this.repoDir, 'blobs', f.etag);
    mkdirSync(dirname(blob), { recursive: true });
    mkdirSync(dirname(pointer), { recursive: true });
    if (!existsSync(blob)) {
      // xet off: one plain streamed request per file, which mirrors behind HF_ENDPOINT serve as well
      const body = await this.hub.downloadFile({ ...this.params, path: f.path, xet: false });
      if (!body) throw new ModelSourceError(`${this.id}: ${f.path} is listed at ${this.commit} but the hub does not serve it`);
      const tmp = `${blob}.${process.pid}-${randomBytes(4).toString('hex')}.incomplete`;
      try {
        const meter = new Meter(f, this.stallMs, onBytes);
        await pipeline(Readable.fromWeb(body.stream() as NodeReadableStream), meter, createWriteStream(tmp));
        if (meter.bytes !== f.size)
          throw new ModelSourceError(
            `${f.path}: got ${meter.bytes} bytes of ${f.size}; the download was cut short, run again to retry`,
          );
        const digest = meter.hash.digest('hex');
        if (digest !== f.etag)
          throw new ModelSourceError(
            `${f.path}: the downloaded bytes hash to ${digest}, not ${f.etag} as the hub lists; nothing was kept (a proxy or mirror altered the file?)`,
          );
        renameSync(tmp, blob);
      } catch (err) {
        // @huggingface/hub aborts a failed body stream with the bare message
        throw err instanceof Error ? err : new ModelSourceError(`${f.path}: download failed (${String(err)})`);
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    linkBlob(blob, pointer);
  }

  /** The weight files: the shards of the index (fetched first to learn them), else model.safetensors. */
  async weights(listing: Map<string, RemoteFile>): Promise<RemoteFile[]> {
    const index = listing.get(WEIGHT_INDEX);
    if (index) {
      await this.fetch(index);
      const shards = indexShards(readFileSync(this.pointer(index), 'utf8'), `${this.id}/${WEIGHT_INDEX}`);
      const absent = shards.filter((s) => !listing.has(s));
      if (absent.length)
        throw new ModelSourceError(`${this.id}: ${WEIGHT_INDEX} lists shards the repo lacks: ${absent.join(', ')}`);
      return [index, ...shards.map((s) => listing.get(s)!)];
    }
    const single = listing.get(SINGLE_WEIGHTS);
    if (single) return [single];
    const others = [...listing.keys()].filter((p) => /\.(bin|pt|pth|gguf|onnx|safetensors)$/.test(p));
    throw new ModelSourceError(
      `${this.id} has no ${SINGLE_WEIGHTS} or ${WEIGHT_INDEX}: realign reads safetensors weights in the transformers layout` +
        (others.length ? ` (the repo has ${others.join(', ')})` : ''),
    );
  }
}

/**
 * Downloads what a model needs (see model-files.ts) at `commit` into the cache and returns the snapshot folder.
 * Files already in the cache are not fetched again. `revision` (a branch or tag) gets its refs file once all are in.
 */
export async function downloadSnapshot(
  id: string,
  revision: string,
  commit: string,
  repoDir: string,
  settings: HubSettings,
  onProgress: (e: DownloadEvent) => void = () => {},
  timeouts: DownloadTimeouts = {},
): Promise<string> {
  const started = Date.now();
  const hub: Hub = await import('@huggingface/hub');
  const dl = new SnapshotDownload(hub, id, commit, repoDir, settings, timeouts);
  const listing = await dl.list();
  if (!listing.has('config.json'))
    throw new ModelSourceError(`${id} at ${commit} has no config.json: it is not a transformers model repo`);
  const weights = await dl.weights(listing);
  const files = [...TEXT_FILES.flatMap((f) => listing.get(f) ?? []), ...weights];
  const plan = files.map((f) => ({ path: f.path, size: f.size, present: dl.present(f) }));
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  const presentBytes = plan.reduce((s, f) => s + (f.present ? f.size : 0), 0);
  const dir = snapshotDir(repoDir, commit);
  onProgress({ type: 'plan', id, commit, dir, files: plan, totalBytes, presentBytes });
  let doneBytes = presentBytes;
  let done = plan.filter((f) => f.present).length;
  for (const [i, f] of files.entries()) {
    if (plan[i].present) {
      await dl.fetch(f);
      continue;
    }
    await dl.fetch(f, (bytes) =>
      onProgress({ type: 'bytes', path: f.path, fileBytes: bytes, fileSize: f.size, doneBytes: doneBytes + bytes, totalBytes }),
    );
    doneBytes += f.size;
    onProgress({ type: 'file', path: f.path, size: f.size, done: ++done, count: files.length });
  }
  writeRef(repoDir, revision, commit);
  onProgress({ type: 'done', id, dir, downloadedBytes: doneBytes - presentBytes, seconds: (Date.now() - started) / 1000 });
  return dir;
}
