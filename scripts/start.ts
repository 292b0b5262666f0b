/**
 * `npm start`: the whole system on this machine — the GPU backend on the embedded default model (or the
 * checkpoints given), and the edge worker under `wrangler dev` with a migrated, seeded local D1. Prints the URLs,
 * the demo key, the admin token, the backend's metrics command and a curl example, writes them to
 * <state dir>/dev.json and dev.env, and then watches both children:
 *
 * - SIGINT, SIGTERM and SIGHUP stop every child (at any time, also during the start); a second one kills them at once.
 * - a child that dies is reported with its last log lines, the other is stopped, and npm start exits with 1
 *   (no restart: a crash of the local system is a bug to see, not to paper over).
 * - a failed start (a model that does not load, wrangler that does not come up) ends npm start within seconds with
 *   the reason; exit status 1. Usage errors exit with 2.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { graphCacheDir } from '../gpu-backend/src/cache-dir.ts';
import { readModelConfig } from '../gpu-backend/src/checkpoint/config.ts';
import { blockSize, finite, port } from '../gpu-backend/src/cli/args.ts';
import { checkRevisionUse, resolveModelArg } from '../gpu-backend/src/cli/model-arg.ts';
import { UsageError } from '../gpu-backend/src/cli/usage-error.ts';
import { defaultModel } from './default-model.ts';
import { killAllNow, lastLines, stopAll, type Proc } from './lib/procs.ts';
import { startSystem, type RunningSystem } from './lib/system.ts';

const ROOT = resolve(import.meta.dirname, '..');
const log = (s: string) => process.stderr.write(`realign: ${s}\n`);

interface StartValues {
  model?: string;
  inra?: boolean;
  reference?: string;
  aligned?: string;
  revision?: string;
  modelId: string;
  port: number;
  backendPort: number;
  lambda?: number;
  device: string;
  weights?: string;
  blockSize?: number;
  stateDir: string;
  verbose?: boolean;
}

// ---- stopping: installed before anything starts, so that no signal or crash leaves a child behind ----

let stopping = false;
let stoppingSince = 0;

/** Stops every child and exits; asked again while stopping (later than a duplicate would come), kills them at once. */
async function shutdown(reason: string, code: number): Promise<never | void> {
  if (stopping) {
    // Ctrl-C reaches npm start twice (from the terminal, and forwarded by npm): one request, not an insistence
    if (Date.now() - stoppingSince < 1000) return;
    log(`${reason} again: killing everything now`);
    killAllNow();
    process.exit(code);
  }
  stopping = true;
  stoppingSince = Date.now();
  log(`${reason}: stopping the backend and the edge`);
  await stopAll(8000);
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(sig, 0));
process.on('uncaughtException', (err) => {
  log(`crashed: ${err.stack ?? err.message}`);
  void shutdown('crash', 1);
});
process.on('unhandledRejection', (err) => {
  log(`crashed: ${(err as Error)?.stack ?? String(err)}`);
  void shutdown('crash', 1);
});
// the last resort (process.exit from anywhere): nothing survives this process
process.on('exit', killAllNow);

// ---- the command line ----

function program(): Command {
  return new Command('npm start')
    .usage('[-- options]')
    .description(
      'start the whole system locally: the backend (realign serve) on a model, and the edge worker under wrangler dev with a seeded local D1',
    )
    .version(
      (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
      '-V, --version',
      'print the version',
    )
    .exitOverride()
    .showHelpAfterError('(add --help for usage: npm start -- --help)')
    .option(
      '--model <dir>',
      'serve this checkpoint folder or Hugging Face model id, org/name (default: the embedded toy InRa model, models/toy-inra)',
    )
    .option('--inra', 'load --model as InRa even without the realign_inra marker in its config.json')
    .option('--reference <dir>', 'fusion: the reference checkpoint (with --aligned)')
    .option('--aligned <dir>', 'fusion: the aligned checkpoint (with --reference)')
    .option('--revision <rev>', 'branch, tag or commit of the Hugging Face model ids among the model options (default: main)')
    .option('--model-id <id>', 'the model name clients send', 'realign-demo')
    .option('--port <port>', "the edge's port (another free one when taken)", port, 8787)
    .option('--backend-port <port>', "the backend's port (another free one when taken)", port, 8000)
    .option('--lambda <λ>', 'the default λ (default: 0.5 for InRa and fusion, 1 for a plain model)', finite)
    .addOption(
      new Option('--device <device>', 'auto picks CUDA when its provider libraries load, else CPU')
        .choices(['auto', 'cpu', 'cuda'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--weights <format>',
        'weight format of the graph: int8/int4 quantize blockwise (default: float32 on CPU, float16 on CUDA)',
      ).choices(['float32', 'float16', 'int8', 'int4']),
    )
    .option('--block-size <n>', 'int8/int4: weights per quantization block, a power of two ≥ 16 (default: 32)', blockSize)
    .option('--state-dir <dir>', 'local D1, configs, logs, dev.json', join(ROOT, '.realign', 'dev'))
    .option('--verbose', "print the backend's and wrangler's logs here as well (they always go to files in <state dir>/logs)")
    .addHelpText(
      'after',
      `\nGraphs are built once into ${graphCacheDir()} (REALIGN_CACHE or REALIGN_GRAPH_CACHE move it) and reused.`,
    );
}

/** The model entry of models.json for the options, and a line saying what it is. */
async function chooseModel(o: StartValues): Promise<{ entry: Record<string, unknown>; note: string }> {
  checkRevisionUse([o.model, o.reference, o.aligned], o.revision);
  if (o.blockSize !== undefined && o.weights !== 'int8' && o.weights !== 'int4')
    throw new UsageError('--block-size needs --weights int8 or int4');
  if (o.reference || o.aligned) {
    if (!o.reference || !o.aligned) throw new UsageError('fusion needs both --reference <dir> and --aligned <dir>');
    if (o.model) throw new UsageError('give either --model or --reference/--aligned, not both');
    const reference = await resolveModelArg(o.reference, { option: '--reference', log, revision: o.revision });
    const entry = {
      mode: 'fusion',
      reference,
      aligned: await resolveModelArg(o.aligned, { option: '--aligned', log, revision: o.revision }),
    };
    return { entry, note: `fusion of ${entry.reference} (reference) and ${entry.aligned} (aligned)` };
  }
  if (o.model) {
    const dir = await resolveModelArg(o.model, { option: '--model', log, revision: o.revision });
    const inra = o.inra === true || readModelConfig(dir).adapterLayers > 0;
    return {
      entry: { mode: inra ? 'inra' : 'single', model: dir },
      note: `${inra ? 'InRa' : 'plain (λ = 1 only)'} checkpoint ${dir}`,
    };
  }
  const d = defaultModel(log);
  return {
    entry: { mode: 'inra', model: d.dir },
    note: d.trained
      ? 'the toy InRa checkpoint trained by realign (models/toy-inra; see bench/toy/README.md)'
      : 'a tiny InRa checkpoint with RANDOM weights (its text is gibberish; λ still changes it)',
  };
}

/** Single-quoted for a POSIX shell. */
const sh = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

function banner(
  sys: RunningSystem,
  o: StartValues,
  note: string,
  files: { json: string; env: string; logs: string[]; exports: string },
): string {
  const backend = sys.backendUrls[0];
  const curl = `curl -s "$EDGE/v1/chat/completions" -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"model":"${o.modelId}","messages":[{"role":"user","content":"708+465"}],"preset":"fast"}' -i`;
  return [
    '',
    'realign is running',
    `  edge (public API):  ${sys.edgeUrl}`,
    `  playground:         ${sys.edgeUrl}/playground`,
    `  demo API key:       ${sys.apiKey}`,
    `  admin token:        ${sys.adminToken}   (Authorization: Bearer … on ${sys.edgeUrl}/admin/…)`,
    `  backend:            ${backend}   (the edge signs its requests; direct calls send the backend token)`,
    `  backend token:      ${sys.backendToken}`,
    `  metrics:            curl -s -H 'authorization: Bearer ${sys.backendToken}' ${backend}/metrics`,
    `  model:              ${o.modelId}: ${note}`,
    `  presets:            fast (λ = 1), balanced (λ = 0.5), deep (λ = −0.5); or send "lambda": x`,
    `  graph cache:        ${graphCacheDir()}`,
    `  logs:               ${files.logs.join(', ')}${o.verbose ? '' : ' (--verbose prints them here too)'}`,
    '',
    "for the README's commands, in your shell (or: source " + files.env + '):',
    `  ${files.exports}`,
    'try:',
    `  ${curl}`,
    '',
    `(also written to ${files.json}; Ctrl-C stops everything)`,
    '',
  ].join('\n');
}

/** Reports a child that died on its own, stops the rest and exits with 1. */
function watch(children: Proc[]): void {
  for (const p of children) {
    void p.exited.then(({ code, signal }) => {
      if (stopping) return;
      log(
        `${p.name} exited on its own (${signal ?? `code ${code}`}); its last log lines${p.logFile ? ` (all of them in ${p.logFile})` : ''}:\n${lastLines(p, 30)}`,
      );
      void shutdown(`${p.name} died`, 1);
    });
  }
}

async function main(argv: string[]): Promise<void> {
  const cli = program();
  cli.parse(argv, { from: 'user' });
  const o = cli.opts<StartValues>();
  const { entry, note } = await chooseModel(o);
  const defaultLambda = o.lambda ?? (entry.mode === 'single' ? 1 : 0.5);
  const stateDir = resolve(o.stateDir);
  const logDir = join(stateDir, 'logs');
  mkdirSync(stateDir, { recursive: true });
  log(`starting the backend and the edge worker (logs in ${logDir}${o.verbose ? '' : '; --verbose prints them here'})`);
  log(`model ${o.modelId}: ${note}; graphs in ${graphCacheDir()} (built on the first start, reused after)`);
  const sys = await startSystem({
    stateDir,
    backends: [
      {
        port: o.backendPort,
        models: [
          {
            id: o.modelId,
            ...entry,
            default_lambda: defaultLambda,
            lambda_range: [-1, 2],
            device: o.device,
            weights: o.weights,
            block_size: o.blockSize,
          },
        ],
      },
    ],
    edgePort: o.port,
    models: [{ id: o.modelId, defaultLambda }],
    graphCache: graphCacheDir(),
    logDir,
    echo: o.verbose === true,
    backendToken: `dev-backend-${Math.random().toString(36).slice(2)}`,
    log,
  });
  if (stopping) return;
  watch([...sys.backends, sys.worker]);
  const vars = {
    EDGE: sys.edgeUrl,
    KEY: sys.apiKey,
    ADMIN_TOKEN: sys.adminToken,
    BACKEND: sys.backendUrls[0],
    BACKEND_TOKEN: sys.backendToken ?? '',
  };
  const exports = `export ${Object.entries(vars)
    .map(([k, v]) => `${k}=${sh(v)}`)
    .join(' ')}`;
  const files = {
    json: join(stateDir, 'dev.json'),
    env: join(stateDir, 'dev.env'),
    logs: [...sys.backends, sys.worker].flatMap((p) => (p.logFile ? [p.logFile] : [])),
    exports,
  };
  writeFileSync(
    files.json,
    JSON.stringify(
      {
        edgeUrl: sys.edgeUrl,
        backendUrl: sys.backendUrls[0],
        apiKey: sys.apiKey,
        adminToken: sys.adminToken,
        backendToken: sys.backendToken,
        model: o.modelId,
        logs: files.logs,
        pids: { npmStart: process.pid, backend: sys.backends[0].child.pid, wrangler: sys.worker.child.pid },
      },
      null,
      2,
    ) + '\n',
    { mode: 0o600 },
  );
  writeFileSync(files.env, `${exports}\n`, { mode: 0o600 });
  process.stdout.write(banner(sys, o, note, files));
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  if (!stopping) {
    if (err instanceof CommanderError) {
      // commander printed the help, the version or the mistake
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    if (err instanceof UsageError) {
      log(`${err.message}\n(npm start -- --help for usage)`);
      process.exit(2);
    }
    log(`could not start: ${(err as Error).message}`);
    await shutdown('start failed', 1);
  }
}
