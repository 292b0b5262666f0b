/**
 * The edge's own latency through `wrangler dev`, before and after a change, side by side in one run (issue 20):
 * `/healthz` p50 (the local stack's floor), `/v1/models` p50, a cache HIT p50, and a 1-token generation's edge
 * overhead (edge minus the same request sent straight to the backend, paired request by request).
 *
 * The backend is the worker tests' stub (worker/test/stub-backend/node/stub-server.ts: a real HTTP server that
 * answers at once), so the overhead is the edge's and nothing else; both edges share it. The "before" tree is a
 * separate checkout of the earlier commit (never a stash of this one):
 *
 *   git worktree add /tmp/edge-before <commit> && ln -s "$PWD/node_modules" /tmp/edge-before/node_modules
 *   node --import tsx bench/edge-bench.ts --before /tmp/edge-before [--rounds 40] [--out bench/results/edge.json]
 *
 * Each round sends, in turn to each edge: /healthz, /v1/models, the cached request, then the generation and
 * the direct backend request back to back. Medians of the rounds are reported per edge (p50 of each).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, run, start, waitReady, type Proc } from '../scripts/lib/procs.ts';
import { wranglerDevArgs } from '../scripts/lib/system.ts';
import { signRequest } from '../shared/src/signing.ts';
import { startStubBackend } from '../worker/test/stub-backend/node/stub-server.ts';
import { median } from './lib/stats.ts';

const ROOT = resolve(import.meta.dirname, '..');
const DEV_KEY = 'rk_dev_local_only_not_a_secret';
export const HMAC = `bench-hmac-${Math.random().toString(36).slice(2)}`;
const ADMIN = `bench-admin-${Math.random().toString(36).slice(2)}`;
const MODEL = 'bench-model';

/** One edge's figures (ms). */
export interface EdgeFigures {
  label: string;
  tree: string;
  healthzP50: number;
  modelsP50: number;
  cacheHitP50: number;
  generationP50: number;
  directBackendP50: number;
  /** p50 of (edge − direct) over the pairs */
  generationOverheadP50: number;
}

/** What one run measured. */
export interface EdgeBenchResult {
  date: string;
  rounds: number;
  backend: string;
  edges: EdgeFigures[];
}

export async function startEdge(
  label: string,
  tree: string,
  backendUrl: string,
  stateDir: string,
): Promise<{ url: string; proc: Proc }> {
  const wrangler = join(ROOT, 'node_modules/wrangler/wrangler-dist/cli.js');
  const persist = join(stateDir, 'state');
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false' };
  mkdirSync(stateDir, { recursive: true });
  await run(process.execPath, [wrangler, 'd1', 'migrations', 'apply', 'realign', '--local', '--persist-to', persist], {
    cwd: tree,
    env,
  });
  await run(
    process.execPath,
    [wrangler, 'd1', 'execute', 'realign', '--local', '--persist-to', persist, '--file', join(tree, 'worker/seed/dev.sql')],
    { cwd: tree, env },
  );
  const envFile = join(stateDir, 'worker.env');
  writeFileSync(envFile, `BACKEND_HMAC_SECRET=${HMAC}\nADMIN_TOKEN=${ADMIN}\n`, { mode: 0o600 });
  const port = await freePort();
  const proc = start(
    `wrangler dev (${label})`,
    process.execPath,
    wranglerDevArgs({
      wrangler,
      port,
      inspectorPort: await freePort(),
      persist,
      envFile,
      vars: { BACKENDS: JSON.stringify([{ url: backendUrl, weight: 1 }]) },
    }),
    { cwd: tree, env },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/healthz`, 180_000, proc);
  for (const path of [`/admin/models/${MODEL}`, `/admin/tenants/dev/models/${MODEL}`]) {
    const r = await fetch(`${url}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(path.startsWith('/admin/models') ? { default_lambda: 1 } : {}),
    });
    if (!r.ok) throw new Error(`${label}: PUT ${path} → ${r.status} ${await r.text()}`);
  }
  return { url, proc };
}

async function timed(fn: () => Promise<Response>, expect: (r: Response) => boolean, what: string): Promise<number> {
  const t0 = performance.now();
  const r = await fn();
  await r.arrayBuffer();
  const ms = performance.now() - t0;
  if (!expect(r)) throw new Error(`${what}: unexpected answer ${r.status} (cache ${r.headers.get('x-realign-cache')})`);
  return ms;
}

/** Runs the bench: `before` and `after` are tree roots (each with node_modules). */
export async function edgeBench(
  trees: { label: string; tree: string }[],
  rounds: number,
  log: (s: string) => void,
): Promise<EdgeBenchResult> {
  const stub = await startStubBackend(HMAC);
  const backendBase = `${stub.url}/ok/edge-bench`;
  const edges: { label: string; tree: string; url: string; proc: Proc }[] = [];
  try {
    for (const t of trees) {
      log(`edge-bench: starting wrangler dev for ${t.label} (${t.tree})`);
      const e = await startEdge(t.label, t.tree, backendBase, join('/tmp', `edge-bench-${process.pid}-${t.label}`));
      edges.push({ ...t, ...e });
    }
    const auth = { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/json' };
    const cachedBody = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'cached' }],
      temperature: 0,
      max_tokens: 1,
    });
    const genBody = JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 1,
      max_tokens: 1,
      lambda: 1,
    });
    const direct = async () => {
      const path = '/ok/edge-bench/v1/chat/completions';
      const headers = await signRequest(HMAC, { method: 'POST', path, body: genBody });
      return fetch(`${stub.url}${path}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: genBody,
      });
    };
    const samples = edges.map(() => ({
      healthz: [] as number[],
      models: [] as number[],
      hit: [] as number[],
      gen: [] as number[],
      direct: [] as number[],
      overhead: [] as number[],
    }));
    const ok = (r: Response) => r.status === 200;
    // warm-up: fill each edge's cache and read cache, and let workerd compile everything
    for (const e of edges) {
      for (let i = 0; i < 5; i++) {
        await (await fetch(`${e.url}/healthz`)).arrayBuffer();
        await (await fetch(`${e.url}/v1/models`, { headers: auth })).arrayBuffer();
        await (await fetch(`${e.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: cachedBody })).arrayBuffer();
        await (await fetch(`${e.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: genBody })).arrayBuffer();
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const [i, e] of edges.entries()) {
        const s = samples[i]!;
        s.healthz.push(await timed(() => fetch(`${e.url}/healthz`), ok, `${e.label} /healthz`));
        s.models.push(await timed(() => fetch(`${e.url}/v1/models`, { headers: auth }), ok, `${e.label} /v1/models`));
        s.hit.push(
          await timed(
            () => fetch(`${e.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: cachedBody }),
            (r) => ok(r) && r.headers.get('x-realign-cache') === 'HIT',
            `${e.label} cache HIT`,
          ),
        );
        const g = await timed(
          () => fetch(`${e.url}/v1/chat/completions`, { method: 'POST', headers: auth, body: genBody }),
          ok,
          `${e.label} generation`,
        );
        const d = await timed(direct, ok, 'direct backend');
        s.gen.push(g);
        s.direct.push(d);
        s.overhead.push(g - d);
      }
    }
    const result: EdgeBenchResult = {
      date: new Date().toISOString(),
      rounds,
      backend: 'stub backend (worker/test/stub-backend), loopback',
      edges: edges.map((e, i) => {
        const s = samples[i]!;
        return {
          label: e.label,
          tree: e.tree,
          healthzP50: median(s.healthz),
          modelsP50: median(s.models),
          cacheHitP50: median(s.hit),
          generationP50: median(s.gen),
          directBackendP50: median(s.direct),
          generationOverheadP50: median(s.overhead),
        };
      }),
    };
    return result;
  } finally {
    await Promise.all(edges.map((e) => e.proc.stop()));
    await stub.close();
  }
}

/** The report section (markdown): the table of one run; bench/run.ts appends bench/results/edge-report.md to report.md. */
export function edgeReport(r: EdgeBenchResult, command: string): string {
  const f = (x: number) => x.toFixed(1);
  const lines = [
    `## Edge latency through wrangler dev, before and after issue 20 (measured ${r.date.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    '```sh',
    command,
    '```',
    '',
    `${r.rounds} rounds; each round sends to each edge in turn /healthz, /v1/models, a cached chat request (HIT), a 1-token generation and the same generation straight to the backend (signed), so the overhead is paired request by request. Backend: ${r.backend}. p50 in ms.`,
    '',
    '| edge | /healthz | /v1/models | cache HIT | 1-token generation | direct backend | generation overhead (edge − direct, paired) | /v1/models − /healthz | HIT − /healthz |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.edges.map(
      (e) =>
        `| ${e.label} | ${f(e.healthzP50)} | ${f(e.modelsP50)} | ${f(e.cacheHitP50)} | ${f(e.generationP50)} | ${f(e.directBackendP50)} | ${f(e.generationOverheadP50)} | ${f(e.modelsP50 - e.healthzP50)} | ${f(e.cacheHitP50 - e.healthzP50)} |`,
    ),
    '',
    'Targets (after): cache HIT p50 ≤ /healthz p50 + 3 ms; /v1/models p50 ≤ /healthz p50 + 3 ms.',
  ];
  return lines.join('\n') + '\n';
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { before: { type: 'string' }, rounds: { type: 'string' }, out: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 40);
  const trees = [...(values.before ? [{ label: 'before', tree: resolve(values.before) }] : []), { label: 'after', tree: ROOT }];
  const log = (s: string) => process.stderr.write(`[edge-bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const result = await edgeBench(trees, rounds, log);
  const command = `node --import tsx bench/edge-bench.ts${values.before ? ` --before ${values.before}` : ''} --rounds ${rounds}`;
  const report = edgeReport(result, command);
  process.stdout.write(report);
  const out = values.out ?? join(ROOT, 'bench/results/edge.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(dirname(out), 'edge-report.md'), report);
  process.exit(0);
}
