import type { Command } from 'commander';
import {
  addModelOptions,
  device,
  deviceOption,
  lambdaList,
  modelSource,
  positiveInt,
  UsageError,
  type ModelValues,
} from '../args.ts';

interface LogitsValues extends ModelValues {
  prompt: string;
  lambda: number[];
  top: number;
  chat?: boolean;
  device: string;
}

/** `realign logits`: for each λ, the top-k next tokens after the prompt with their log-probabilities (JSON). */
export function register(program: Command): void {
  addModelOptions(
    program
      .command('logits')
      .description(
        'print, for each λ, the top-k next tokens after the prompt with their log-probabilities (JSON), from one forward pass',
      ),
  )
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--lambda <list>', 'comma-separated λ values, e.g. -0.5,0,1,1.5', lambdaList, [1])
    .option('--top <k>', 'tokens per λ', positiveInt, 5)
    .option('--chat', "wrap the prompt in the tokenizer's chat template (default: raw text)")
    .addOption(deviceOption())
    .action(logits);
}

async function logits(o: LogitsValues): Promise<void> {
  const source = await modelSource(o);
  const { prepareGraphs } = await import('../graphs.ts');
  const { loadModel } = await import('../../engine/model-loader.ts');
  const { branchesFor, RowAllocator } = await import('../../engine/rows.ts');
  const { topLogprobs } = await import('../../engine/logprobs.ts');
  const { TextTokenizer } = await import('../../text/tokenizer.ts');
  const { TokenTable } = await import('../../text/token-table.ts');
  const prepared = await prepareGraphs(source, device(o.device), () => ['step']);
  // one parse of tokenizer.json: its table goes to loadModel
  const tok = TextTokenizer.load(prepared.main.tokenizerFile, prepared.main.tokenizerConfigFile);
  const tokens = TokenTable.fromTokenizer(tok);
  const model = await loadModel(source, { device: prepared.device, graphCache: prepared.graphCache, tokens: tokens.data });
  const ids = o.chat ? tok.encodeChat([{ role: 'user', content: o.prompt }]) : tok.encode(o.prompt);
  if (ids.length === 0) throw new UsageError('--prompt encodes to no tokens');
  const lambdas = o.lambda;
  const rows = new RowAllocator(model.runner);
  const handle = rows.add(branchesFor(model.runner.manifest.mode, lambdas));
  const plan = rows.prefillPlan([{ handle, tokens: ids, lambdas }]);
  const res = await model.runner.step(plan);
  const V = res.vocabSize;
  const results = lambdas.map((lambda, i) => ({
    lambda,
    top: topLogprobs(res.logits.subarray(i * V, (i + 1) * V), o.top).map((t) => ({
      id: t.token,
      token: tokens.tokenString(t.token),
      logprob: t.logprob,
    })),
  }));
  process.stdout.write(`${JSON.stringify({ mode: source.mode, device: model.device, prompt_tokens: ids.length, results })}\n`);
}
