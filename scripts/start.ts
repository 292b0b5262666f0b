/**
 * `npm start`: the whole system on this machine — the GPU backend on the embedded default model (or the
 * checkpoints given), and the edge worker under `wrangler dev` with a migrated, seeded local D1. Prints the edge
 * URL, the demo key and a curl example, writes them to .realign/dev.json, and stops both on Ctrl-C.
 *
 *   npm start [-- --model <dir> [--inra] | --reference <dir> --aligned <dir>] [--port 8787] [--backend-port 8000]
 *             [--lambda <default λ>] [--device auto|cpu|cuda]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readModelConfig } from '../gpu-backend/src/checkpoint/config.ts';
import { defaultModel } from './default-model.ts';
import { startSystem } from './lib/system.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    inra: { type: 'boolean' },
    reference: { type: 'string' },
    aligned: { type: 'string' },
    port: { type: 'string', default: '8787' },
    'backend-port': { type: 'string', default: '8000' },
    lambda: { type: 'string' },
    device: { type: 'string', default: 'auto' },
    'model-id': { type: 'string' },
  },
});
const log = (s: string) => process.stderr.write(`realign: ${s}\n`);

let model: Record<string, unknown>;
let note = '';
if (values.reference || values.aligned) {
  if (!values.reference || !values.aligned) throw new Error('fusion needs both --reference and --aligned');
  model = { mode: 'fusion', reference: resolve(values.reference), aligned: resolve(values.aligned) };
} else if (values.model) {
  const inra = values.inra || readModelConfig(values.model).adapterLayers > 0;
  model = { mode: inra ? 'inra' : 'single', model: resolve(values.model) };
} else {
  const d = defaultModel(log);
  model = { mode: 'inra', model: d.dir };
  note = d.trained
    ? 'model: the toy InRa checkpoint trained by realign (models/toy-inra; see bench/toy/README.md)'
    : 'model: a tiny InRa checkpoint with RANDOM weights (its text is gibberish; λ still changes it)';
}
const id = values['model-id'] ?? 'realign-demo';
const defaultLambda = values.lambda !== undefined ? Number(values.lambda) : model.mode === 'single' ? 1 : 0.5;
const stateDir = join(ROOT, '.realign', 'dev');
mkdirSync(stateDir, { recursive: true });
log('starting the backend and the edge worker (first start builds the model graph; later starts reuse it)');
const sys = await startSystem({
  stateDir,
  backends: [{ port: Number(values['backend-port']), models: [{ id, ...model, default_lambda: defaultLambda, lambda_range: [-1, 2], device: values.device }] }],
  edgePort: Number(values.port),
  models: [{ id, defaultLambda }],
});
const info = { edgeUrl: sys.edgeUrl, backendUrl: sys.backendUrls[0], apiKey: sys.apiKey, model: id };
writeFileSync(join(ROOT, '.realign', 'dev.json'), JSON.stringify(info, null, 2) + '\n');
const curl = `curl -s ${sys.edgeUrl}/v1/chat/completions -H 'authorization: Bearer ${sys.apiKey}' -H 'content-type: application/json' -d '{"model":"${id}","messages":[{"role":"user","content":"708+465"}],"preset":"fast"}' -i`;
process.stdout.write(
  [
    '',
    `realign is running`,
    `  edge (public API):  ${sys.edgeUrl}`,
    `  playground:         ${sys.edgeUrl}/playground`,
    `  backend:            ${sys.backendUrls[0]}`,
    `  demo API key:       ${sys.apiKey}`,
    `  ${note || `model: ${JSON.stringify(model)}`}`,
    `  presets:            fast (λ = 1), balanced (λ = 0.5), deep (λ = −0.5); or send "lambda": x`,
    '',
    `try:`,
    `  ${curl}`,
    '',
    `(also written to .realign/dev.json; Ctrl-C stops everything)`,
    '',
  ].join('\n'),
);
await new Promise<void>((resolveStop) => {
  const stop = () => {
    log('stopping');
    void sys.stop().then(resolveStop);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('SIGHUP', stop);
});
