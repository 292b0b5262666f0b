/**
 * The whole local system: GPU backend(s) (`realign serve`) and the edge worker (`wrangler dev` with a local D1
 * that is migrated and seeded), wired with a shared HMAC secret. Used by `npm start`, the end-to-end tests and the
 * serving benchmark.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { catalogueRow, fetchServedModels } from './catalogue.ts';
import { freePort, lastLines, run, start, waitReady, type Proc } from './procs.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const WRANGLER = join(ROOT, 'node_modules/wrangler/wrangler-dist/cli.js');
const REALIGN = join(ROOT, 'bin/realign.js');

/** The seeded development tenant's public API key (local D1 only; see worker/seed/dev.sql). */
export const DEMO_KEY = 'rk_dev_local_only_not_a_secret';

/** One backend to start: its models.json entries. */
export interface BackendSpec {
  models: Record<string, unknown>[];
  port?: number;
  /** routing weight in the worker's BACKENDS (default 1) */
  weight?: number;
}

/** Progress of a start, one line each (what is being waited for, and how long it has taken). */
export type StartLog = (message: string) => void;

/** Options of the system. */
export interface SystemOptions {
  /** folder for configs, logs, graph cache and the local D1 */
  stateDir: string;
  backends: BackendSpec[];
  edgePort?: number;
  /**
   * model ids to register in the edge's catalogue for the dev tenant, with their default λ (their context and
   * adapters come from the backends' /v1/models)
   */
  models: { id: string; defaultLambda: number }[];
  echo?: boolean;
  hmacSecret?: string;
  adminToken?: string;
  /** extra `--var` values for the worker */
  workerVars?: Record<string, string>;
  /** a bearer token the backends also accept, for direct calls (benchmarks, /metrics) */
  backendToken?: string;
  /** built graphs (default: `graphs/` in stateDir) */
  graphCache?: string;
  /** write each child's whole output to a file in this folder (backend-<port>.log, wrangler.log) */
  logDir?: string;
  /** stage lines while starting */
  log?: StartLog;
}

/** A running system. */
export interface RunningSystem {
  edgeUrl: string;
  backendUrls: string[];
  backends: Proc[];
  worker: Proc;
  apiKey: string;
  adminToken: string;
  hmacSecret: string;
  /** the bearer token the backends accept for direct calls, when one was given */
  backendToken?: string;
  /** admin API call on the edge */
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

/** How `startBackendProc` runs the backend. */
export interface BackendProcOptions {
  echo?: boolean;
  bearerToken?: string;
  graphCache?: string;
  logDir?: string;
  log?: StartLog;
  /** sees the process as soon as it is spawned (to stop it if the start is abandoned) */
  spawned?: (proc: Proc) => void;
}

/** A failed model in a /readyz answer (`{"models": {"<id>": "failed: <reason>"}}`), as an error naming it. */
export function failedModel(readyzBody: string): Error | null {
  let models: unknown;
  try {
    models = (JSON.parse(readyzBody) as { models?: unknown }).models;
  } catch {
    return null;
  }
  if (!models || typeof models !== 'object') return null;
  for (const [id, state] of Object.entries(models)) {
    const text = typeof state === 'string' ? state : JSON.stringify(state);
    if (/^"?failed\b|"state":"failed"/.test(text))
      return new Error(`the backend could not load model "${id}": ${text.replace(/^failed:\s*/, '')}`);
  }
  return null;
}

/**
 * Starts one `realign serve` process and waits until its models are loaded. A model that fails to load ends the
 * wait at once (the backend says so in /readyz) instead of waiting out the timeout.
 */
export async function startBackendProc(
  stateDir: string,
  spec: BackendSpec,
  hmacSecret: string,
  opts: BackendProcOptions = {},
  attempt = 1,
): Promise<{ url: string; proc: Proc }> {
  const port = await freePort(spec.port ?? 0);
  const config = join(stateDir, `models-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      { models: spec.models, graph_cache: opts.graphCache ?? join(stateDir, 'graphs'), shutdown_grace_ms: 5000 },
      null,
      2,
    ),
  );
  const proc = start(`backend:${port}`, process.execPath, [REALIGN, 'serve', '--config', config, '--port', String(port)], {
    env: {
      ...process.env,
      REALIGN_HMAC_SECRET: hmacSecret,
      ...(opts.bearerToken ? { REALIGN_API_TOKENS: opts.bearerToken } : {}),
    },
    echo: opts.echo,
    logFile: opts.logDir ? join(opts.logDir, `backend-${port}.log`) : undefined,
  });
  opts.spawned?.(proc);
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const heartbeat = setInterval(
    () =>
      opts.log?.(
        `backend: still loading the model (${Math.round((Date.now() - started) / 1000)} s; a first start builds its graph)`,
      ),
    15_000,
  );
  try {
    await waitReady(`${url}/readyz`, 600_000, proc, (body) => {
      const failed = failedModel(body);
      if (failed) throw new Error(`${failed.message}\n${proc.name}'s last log lines:\n${lastLines(proc, 20)}`);
    });
  } catch (err) {
    await proc.stop();
    // the port was free when chosen, not when the backend bound it (see startSystem's wrangler dev): again, on another
    if (attempt < 3 && /EADDRINUSE/.test(lastLines(proc, 40))) {
      clearInterval(heartbeat);
      opts.log?.(`backend: port ${port} was taken before it bound it; starting it again`);
      return startBackendProc(stateDir, spec, hmacSecret, opts, attempt + 1);
    }
    throw err;
  } finally {
    clearInterval(heartbeat);
  }
  opts.log?.(`backend: ready on ${url} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { url, proc };
}

/**
 * The arguments of `wrangler dev` as realign runs it locally: on 127.0.0.1:`port`, its inspector on `inspectorPort`,
 * local state in `persist`, the secrets from `envFile`, quiet, and `vars` as --var overrides. `wrangler` is the path
 * of the CLI script (node runs it), so another checkout's wrangler can be started the same way.
 */
export function wranglerDevArgs(opts: {
  wrangler?: string;
  port: number;
  inspectorPort: number;
  persist: string;
  envFile: string;
  vars: Record<string, string>;
}): string[] {
  return [
    opts.wrangler ?? WRANGLER,
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--inspector-port',
    String(opts.inspectorPort),
    '--persist-to',
    opts.persist,
    '--env-file',
    opts.envFile,
    '--show-interactive-dev-session=false',
    '--log-level',
    'warn',
    ...Object.entries(opts.vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
}

/** Starts the whole system and waits until it answers. */
export async function startSystem(opts: SystemOptions): Promise<RunningSystem> {
  const hmacSecret = opts.hmacSecret ?? `dev-hmac-${Math.random().toString(36).slice(2)}`;
  const adminToken = opts.adminToken ?? `dev-admin-${Math.random().toString(36).slice(2)}`;
  mkdirSync(opts.stateDir, { recursive: true });
  const started: Proc[] = [];
  try {
    // the backends load their models while wrangler migrates and seeds the local D1
    const persist = join(opts.stateDir, 'wrangler-state');
    const wrangler = (args: string[]) =>
      run(process.execPath, [WRANGLER, ...args], { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });
    const d1 = (async () => {
      await wrangler(['d1', 'migrations', 'apply', 'realign', '--local', '--persist-to', persist]);
      await wrangler([
        'd1',
        'execute',
        'realign',
        '--local',
        '--persist-to',
        persist,
        '--file',
        join(ROOT, 'worker/seed/dev.sql'),
      ]);
      opts.log?.('edge: local D1 migrated and seeded');
    })();
    const backendOpts = {
      echo: opts.echo,
      bearerToken: opts.backendToken,
      graphCache: opts.graphCache,
      logDir: opts.logDir,
      log: opts.log,
      spawned: (p: Proc) => started.push(p),
    };
    // the first failure ends the start (a model that cannot load should not wait for the others)
    const [, ...backends] = await Promise.all([
      d1,
      ...opts.backends.map((spec) => startBackendProc(opts.stateDir, spec, hmacSecret, backendOpts)),
    ]);
    const envFile = join(opts.stateDir, 'worker.env');
    writeFileSync(envFile, `BACKEND_HMAC_SECRET=${hmacSecret}\nADMIN_TOKEN=${adminToken}\n`, { mode: 0o600 });
    const vars = {
      BACKENDS: JSON.stringify(backends.map((b, i) => ({ url: b.url, weight: opts.backends[i].weight ?? 1 }))),
      // the local system always seeds the dev tenant; its key is public, so the playground may offer it
      PLAYGROUND_DEV_KEY: DEMO_KEY,
      ...opts.workerVars,
    };
    // freePort's ports are free when chosen, not when wrangler dev binds them: another process (a workerd of a
    // parallel test, say) can take one in between. wrangler dev then exits with "Address already in use" before it
    // is ready; start it again on fresh ports (a port the caller asked for is kept)
    let edgePort = 0;
    let worker: Proc;
    for (let attempt = 1; ; attempt++) {
      edgePort = await freePort(opts.edgePort ?? 0);
      worker = start(
        'wrangler dev',
        process.execPath,
        wranglerDevArgs({ port: edgePort, inspectorPort: await freePort(), persist, envFile, vars }),
        {
          cwd: ROOT,
          env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
          echo: opts.echo,
          logFile: opts.logDir ? join(opts.logDir, 'wrangler.log') : undefined,
        },
      );
      started.push(worker);
      opts.log?.('edge: starting wrangler dev');
      try {
        await waitReady(`http://127.0.0.1:${edgePort}/healthz`, 120_000, worker);
        break;
      } catch (err) {
        const taken = worker.child.exitCode !== null && /Address already in use/.test((err as Error).message);
        if (!taken || attempt >= 3) throw err;
        opts.log?.(`edge: a port was taken before wrangler dev bound it; starting it again (attempt ${attempt + 1})`);
      }
    }
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    opts.log?.(`edge: ready on ${edgeUrl}`);
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${edgeUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    // each catalogue row repeats what the backends serve: the model's context and its named adapters
    const served = (await Promise.all(backends.map((b) => fetchServedModels(b.url, hmacSecret)))).flat();
    for (const m of opts.models) {
      const row = catalogueRow(
        m.id,
        m.defaultLambda,
        served.filter((s) => s.id === m.id),
      );
      for (const [path, body] of [
        [`/admin/models/${encodeURIComponent(m.id)}`, row],
        [`/admin/tenants/dev/models/${encodeURIComponent(m.id)}`, {}],
      ] as const) {
        const r = await admin('PUT', path, body);
        if (!r.ok) throw new Error(`registering model ${m.id}: PUT ${path} → ${r.status} ${await r.text()}`);
      }
    }
    return {
      edgeUrl,
      backendUrls: backends.map((b) => b.url),
      backends: backends.map((b) => b.proc),
      worker,
      apiKey: DEMO_KEY,
      adminToken,
      hmacSecret,
      backendToken: opts.backendToken,
      admin,
      async stop() {
        await Promise.all(started.map((p) => p.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}
