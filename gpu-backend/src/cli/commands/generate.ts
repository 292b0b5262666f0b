import { InvalidArgumentError, type Command } from 'commander';
import { addModelOptions, device, deviceOption, finite, modelSource, positiveInt, type ModelValues } from '../args.ts';
import { note } from '../progress.ts';

interface GenerateValues extends ModelValues {
  prompt: string;
  lambda: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
  chat?: boolean;
  raw?: boolean;
  device: string;
}

/** `realign generate`: streams a completion to stdout; a summary (tokens, finish reason, speed) goes to stderr. */
export function register(program: Command): void {
  addModelOptions(
    program.command('generate').description('generate text at one λ; the text goes to stdout, progress and a summary to stderr'),
  )
    .requiredOption('--prompt <text>', 'the prompt (a user message under the chat template, see --chat)')
    .option(
      '--lambda <λ>',
      'where the output sits: 0 the reference model, 1 the aligned one, between interpolates, outside extrapolates (e.g. -0.5)',
      finite,
      1,
    )
    .option('--max-tokens <n>', 'most tokens to generate', positiveInt, 128)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', nonNegative, 0)
    .option('--top-p <p>', 'nucleus sampling mass, in (0, 1]', unitInterval, 1)
    .option('--seed <s>', 'sampling seed (default: random)', finite)
    .option('--chat', "wrap the prompt in the tokenizer's chat template (default when the tokenizer has one)")
    .option('--no-chat', 'send the prompt as raw text, without the chat template')
    .option('--raw', 'the same as --no-chat')
    .addOption(deviceOption())
    .action(generate);
}

function nonNegative(value: string): number {
  const n = finite(value);
  if (n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return n;
}

function unitInterval(value: string): number {
  const n = finite(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in (0, 1], got "${value}"`);
  return n;
}

async function generate(o: GenerateValues, cmd: Command): Promise<void> {
  const source = await modelSource(o);
  const { prepareGraphs } = await import('../graphs.ts');
  const { Engine } = await import('../../engine/engine.ts');
  const { samplingParams } = await import('../../sampling/params.ts');
  const { TextTokenizer } = await import('../../text/tokenizer.ts');
  const { TokenTable } = await import('../../text/token-table.ts');
  const prepared = await prepareGraphs(source, device(o.device), (d) => (d === 'cuda' ? ['step', 'decode-loop'] : ['step']));
  const tok = TextTokenizer.load(prepared.main.tokenizerFile, prepared.main.tokenizerConfigFile);
  const chat = o.raw ? false : (o.chat ?? tok.hasChatTemplate);
  if (chat && !tok.hasChatTemplate)
    throw new Error(`--chat: ${prepared.main.dir} has no chat_template in tokenizer_config.json; use --no-chat`);
  const promptIds = chat ? tok.encodeChat([{ role: 'user', content: o.prompt }]) : tok.encode(o.prompt);
  note('starting the engine');
  const engine = await Engine.start({
    source,
    device: prepared.device,
    graphCache: prepared.graphCache,
    limits: { maxBatch: 1, maxKvTokens: 1 << 24, maxQueue: 1, maxPrefillTokens: 1 << 16 },
    // the tokenizer this thread loaded, so that the engine thread does not parse it again
    tokens: TokenTable.fromTokenizer(tok).data,
  });
  const said = (name: string) => (cmd.getOptionValueSource(name) === 'default' ? ' (default)' : '');
  process.stderr.write(
    `realign: ${source.mode} on ${engine.info.device} (${prepared.deviceReason}), λ = ${o.lambda}${said('lambda')}, ` +
      `${chat ? 'chat template' : 'raw prompt'}, temperature ${o.temperature}${said('temperature')}, max ${o.maxTokens} tokens${said('maxTokens')}\n`,
  );
  const started = performance.now();
  const gen = engine.generate({
    promptIds,
    lambda: o.lambda,
    params: samplingParams({ temperature: o.temperature, top_p: o.topP, seed: o.seed ?? null }),
    maxTokens: o.maxTokens,
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
