import { loadModel } from '../../engine/model-loader.ts';
import { branchesFor, RowAllocator } from '../../engine/rows.ts';
import { topLogprobs } from '../../engine/logprobs.ts';
import { deviceOption, MODEL_OPTIONS, modelSource, num, parse, positiveInt, UsageError } from '../args.ts';

export const usage =
  'realign logits --model <dir> [--inra] [--reference <dir> --aligned <dir>] --prompt <text> --lambda <l1,l2,...> [--top k] [--device auto|cpu|cuda] [--chat]';

/** Prints, for each λ, the top-k next tokens after the prompt with their log-probabilities (JSON). */
export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...MODEL_OPTIONS,
    prompt: { type: 'string' },
    lambda: { type: 'string' },
    top: { type: 'string' },
    device: { type: 'string' },
    chat: { type: 'boolean' },
  });
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  const lambdas = (values.lambda ?? '1').split(',').map((s) => num(s, 'lambda'));
  const k = positiveInt(values.top, 'top', 5);
  const device = deviceOption(values.device);
  const source = modelSource(values);
  const model = await loadModel(source, { device, log: (m, f) => process.stderr.write(`${m} ${JSON.stringify(f ?? {})}\n`) });
  const tok = model.tokenizer;
  const ids = values.chat ? tok.encodeChat([{ role: 'user', content: values.prompt }]) : tok.encode(values.prompt);
  if (ids.length === 0) throw new UsageError('--prompt encodes to no tokens');
  const rows = new RowAllocator(model.runner);
  const handle = rows.add(branchesFor(model.runner.manifest.mode, lambdas));
  const plan = rows.prefillPlan([{ handle, tokens: ids, lambdas }]);
  const res = await model.runner.step(plan);
  const V = res.vocabSize;
  const results = lambdas.map((lambda, i) => ({
    lambda,
    top: topLogprobs(res.logits.subarray(i * V, (i + 1) * V), k).map((t) => ({ id: t.token, token: tok.tokenString(t.token), logprob: t.logprob })),
  }));
  process.stdout.write(`${JSON.stringify({ mode: source.mode, device: model.device, prompt_tokens: ids.length, results })}\n`);
}
