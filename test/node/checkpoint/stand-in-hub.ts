/**
 * A stand-in for the Hugging Face Hub's file API on 127.0.0.1, for the download tests (no network here). It answers
 * the endpoints @huggingface/hub calls, as the hub does:
 *
 *   GET  /api/models/{org}/{name}/revision/{rev}     model info with `sha` (the commit a branch or tag names)
 *   GET  /api/models/{org}/{name}/tree/{rev}[/{dir}] the listing: path, size, git oid, `lfs: {oid, size}`; paged
 *                                                    with a `Link: <…>; rel="next"` header
 *   GET|HEAD /{org}/{name}/resolve/{rev}/{path}      small files directly (ETag = git blob id), LFS files as a 302
 *                                                    to the CDN (X-Linked-Etag = sha256, X-Linked-Size); both carry
 *                                                    X-Repo-Commit and honour `Range`
 *   GET|HEAD /cdn/{sha256}                           LFS contents, with `Range`
 *
 * Errors carry the hub's X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound) and JSON `{error}` bodies; a
 * private repo answers 401 without its token. Faults can be injected per file: altered bytes, or a body that stalls.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** One commit's files: path → contents. */
export type Files = Map<string, Buffer>;

interface Repo {
  commits: Map<string, Files>;
  refs: Map<string, string>;
  token?: string;
}

/** A request the stand-in received. */
export interface HubRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

/** Reads every file under `dir` (subfolders as `a/b`). */
export function filesOf(dir: string, prefix = ''): Files {
  const files: Files = new Map();
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) for (const [p, b] of filesOf(full, `${prefix}${name}/`)) files.set(p, b);
    else files.set(prefix + name, readFileSync(full));
  }
  return files;
}

const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Files the hub keeps in LFS (by the usual .gitattributes). */
const isLfs = (path: string) => /\.(safetensors|bin|onnx)$/.test(path);

/** A running stand-in hub. */
export class StandInHub {
  readonly requests: HubRequest[] = [];
  /** paths whose bytes are altered in transit */
  readonly corrupt = new Set<string>();
  /** paths whose body stops after half its bytes and never ends */
  readonly stall = new Set<string>();
  /** when set, every /api/ request is answered with this status (a hub in trouble) */
  apiStatus: number | undefined;
  /** tree listing page size (the hub pages long listings) */
  pageSize = 1000;
  private readonly repos = new Map<string, Repo>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly hanging = new Set<ServerResponse>();
  private server = createServer((req, res) => this.handle(req, res));
  url = '';

  /** Starts listening on a free port. */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Adds a commit of `id` with `files` and points `ref` (default main) at it; returns the commit hash. */
  commit(id: string, files: Files, opts: { ref?: string; token?: string } = {}): string {
    const repo: Repo = this.repos.get(id) ?? { commits: new Map(), refs: new Map() };
    this.repos.set(id, repo);
    if (opts.token) repo.token = opts.token;
    const h = createHash('sha1').update(id).update(String(repo.commits.size));
    for (const [p, b] of [...files].sort()) h.update(p).update(b);
    const sha = h.digest('hex');
    repo.commits.set(sha, files);
    repo.refs.set(opts.ref ?? 'main', sha);
    for (const [p, b] of files) if (isLfs(p)) this.blobs.set(sha256(b), b);
    return sha;
  }

  /** Requests whose path starts with `prefix`. */
  requested(prefix: string): HubRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, this.url);
    this.requests.push({
      method: req.method!,
      path: url.pathname + url.search,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (parts[0] === 'cdn') {
      const blob = this.blobs.get(parts[1]);
      if (!blob) return error(res, 404, 'EntryNotFound', 'no such object');
      return this.send(req, res, blob, { etag: parts[1] }, this.pathOfBlob(parts[1]));
    }
    if (parts[0] === 'api' && this.apiStatus) return error(res, this.apiStatus, undefined, 'the hub is having trouble');
    if (parts[0] === 'api' && parts[1] === 'models') return this.api(req, res, url, parts.slice(2));
    if (parts[2] === 'resolve') return this.resolve(req, res, `${parts[0]}/${parts[1]}`, parts[3], parts.slice(4).join('/'));
    error(res, 404, undefined, `no route ${url.pathname}`);
  }

  /** The repo and commit a request names, or an error answered. */
  private lookup(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    rev: string,
  ): { repo: Repo; sha: string; files: Files } | null {
    const repo = this.repos.get(id);
    if (!repo || (repo.token && req.headers.authorization !== `Bearer ${repo.token}`)) {
      // the hub answers 401 for private repos and for repos that do not exist, unauthenticated
      if (!req.headers.authorization) return (error(res, 401, 'RepoNotFound', 'Invalid username or password.'), null);
      return (error(res, 404, 'RepoNotFound', 'Repository not found'), null);
    }
    const sha = repo.refs.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
    if (!sha) return (error(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`), null);
    return { repo, sha, files: repo.commits.get(sha)! };
  }

  private api(req: IncomingMessage, res: ServerResponse, url: URL, parts: string[]): void {
    const id = `${parts[0]}/${parts[1]}`;
    const found = this.lookup(req, res, id, parts[3] === 'HEAD' ? 'main' : parts[3]);
    if (!found) return;
    if (parts[2] === 'revision') {
      const siblings = [...found.files.keys()].map((rfilename) => ({ rfilename }));
      return json(res, 200, {
        _id: `id-${parts[1]}`,
        id,
        sha: found.sha,
        private: Boolean(found.repo.token),
        gated: false,
        disabled: false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z',
        siblings,
      });
    }
    if (parts[2] !== 'tree') return error(res, 404, undefined, 'no such api');
    const dir = parts.slice(4).join('/');
    const recursive = url.searchParams.get('recursive') === 'true';
    const entries: Record<string, unknown>[] = [];
    const dirs = new Set<string>();
    for (const [p, b] of [...found.files].sort()) {
      if (dir && !p.startsWith(`${dir}/`)) continue;
      const rest = dir ? p.slice(dir.length + 1) : p;
      if (rest.includes('/') && !recursive) {
        const sub = (dir ? `${dir}/` : '') + rest.split('/')[0];
        if (!dirs.has(sub))
          entries.push({ type: 'directory', oid: createHash('sha1').update(sub).digest('hex'), size: 0, path: sub });
        dirs.add(sub);
        continue;
      }
      const lfs = isLfs(p) ? { oid: sha256(b), size: b.length, pointerSize: 134 } : undefined;
      entries.push({
        type: 'file',
        oid: lfs
          ? gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${lfs.oid}\nsize ${b.length}\n`))
          : gitOid(b),
        size: b.length,
        path: p,
        ...(lfs && { lfs }),
      });
    }
    const cursor = Number(url.searchParams.get('cursor') ?? 0);
    const page = entries.slice(cursor, cursor + this.pageSize);
    if (cursor + this.pageSize < entries.length) {
      const next = new URL(url);
      next.searchParams.set('cursor', String(cursor + this.pageSize));
      res.setHeader('Link', `<${next.href}>; rel="next"`);
    }
    json(res, 200, page);
  }

  private resolve(req: IncomingMessage, res: ServerResponse, id: string, rev: string, path: string): void {
    const found = this.lookup(req, res, id, rev);
    if (!found) return;
    const b = found.files.get(path);
    if (!b) return error(res, 404, 'EntryNotFound', `${path} does not exist on "${rev}"`);
    res.setHeader('X-Repo-Commit', found.sha);
    if (isLfs(path)) {
      const oid = sha256(b);
      res.writeHead(302, {
        Location: `${this.url}/cdn/${oid}`,
        'X-Linked-Etag': `"${oid}"`,
        'X-Linked-Size': String(b.length),
        ETag: `"${gitOid(b)}"`,
      });
      return void res.end();
    }
    this.send(req, res, b, { etag: gitOid(b) }, path);
  }

  private pathOfBlob(oid: string): string {
    for (const repo of this.repos.values())
      for (const files of repo.commits.values()) for (const [p, b] of files) if (isLfs(p) && sha256(b) === oid) return p;
    return '';
  }

  /** Sends `body` (or the `Range` asked for), with the injected faults of `path`. */
  private send(req: IncomingMessage, res: ServerResponse, body: Buffer, h: { etag: string }, path: string): void {
    let start = 0;
    let end = body.length - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
    }
    let part = body.subarray(start, end + 1);
    if (this.corrupt.has(path) && part.length > 8) {
      part = Buffer.from(part);
      part[part.length >> 1] ^= 0xff;
    }
    res.writeHead(range ? 206 : 200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(part.length),
      'Accept-Ranges': 'bytes',
      ETag: `"${h.etag}"`,
      ...(range && { 'Content-Range': `bytes ${start}-${end}/${body.length}` }),
    });
    if (req.method === 'HEAD') return void res.end();
    if (this.stall.has(path) && !range) {
      res.write(part.subarray(0, part.length >> 1));
      this.hanging.add(res);
      return;
    }
    res.end(part);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function error(res: ServerResponse, status: number, code: string | undefined, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...(code && { 'X-Error-Code': code }) });
  res.end(JSON.stringify({ error: message }));
}
