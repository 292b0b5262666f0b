import { Engine } from '../../engine/engine.ts';
import { samplingParams } from '../../sampling/params.ts';
import { TextTokenizer } from '../../text/tokenizer.ts';
import { openSource } from '../../engine/model-loader.ts';
import { deviceOption, MODEL_OPTIONS, modelSource, num, parse, positiveInt, UsageError } from '../args.ts';

export const usage =
  'realign generate --model <dir> [--inra | --reference <dir> --aligned <dir>] --prompt <text> --lambda <l> [--max-tokens n] [--temperature t] [--top-p p] [--seed s] [--chat] [--device auto|cpu|cuda]';

/** Streams a completion to stdout; a summary (tokens, finish reason, speed) goes to stderr. */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    prompt: { type: 'string' },
    lambda: { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    chat: { type: 'boolean' },
    device: { type: 'string' },
  });
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  const lambda = num(values.lambda, 'lambda', 1);
  const maxTokens = positiveInt(values['max-tokens'], 'max-tokens', 128);
  const temperature = num(values.temperature, 'temperature', 0);
  if (temperature < 0) throw new UsageError(`--temperature must be ≥ 0, got ${temperature}`);
  const topP = num(values['top-p'], 'top-p', 1);
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`);
  const device = deviceOption(values.device);
  const source = modelSource(values);
  const main = openSource(source);
  const ckpt = (main.model ?? main.reference)!;
  if (!ckpt.tokenizerFile) throw new UsageError(`${ckpt.dir} has no tokenizer.json`);
  const tok = TextTokenizer.load(ckpt.tokenizerFile, ckpt.tokenizerConfigFile);
  const promptIds = values.chat ? tok.encodeChat([{ role: 'user', content: values.prompt }]) : tok.encode(values.prompt);
  const engine = await Engine.start({
    source,
    device,
    limits: { maxBatch: 1, maxKvTokens: 1 << 24, maxQueue: 1, maxPrefillTokens: 1 << 16 },
  });
  process.stderr.write(`realign: ${source.mode} on ${engine.info.device} (${engine.info.deviceReason}), λ = ${lambda}\n`);
  const started = performance.now();
  const gen = engine.generate({
    promptIds,
    lambda,
    params: samplingParams({ temperature, top_p: topP, seed: values.seed === undefined ? null : num(values.seed, 'seed') }),
    maxTokens,
    stop: [],
    stopTokenIds: [],
    ignoreEos: false,
    skipSpecialTokens: true,
    stream: 0,
  });
  const stop = () => gen.cancel();
  process.once('SIGINT', stop);
  let tokens = 0;
  let finish = '';
  for await (const ev of gen.events) {
    tokens += ev.tokens.length;
    if (ev.text) process.stdout.write(ev.text);
    if (ev.finish) finish = ev.finish + (ev.error ? `: ${ev.error.message}` : '');
  }
  process.removeListener('SIGINT', stop);
  const secs = (performance.now() - started) / 1000;
  process.stdout.write('\n');
  process.stderr.write(`realign: ${tokens} tokens, finish ${finish}, ${(tokens / secs).toFixed(1)} tokens/s\n`);
  await engine.shutdown();
}
