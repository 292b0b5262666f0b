/**
 * The node side of the one-shot GPU check (bench/gpu/gpu-check.sh runs each subcommand as its own stage):
 *
 *   models  --dir D [--preset r1-distill-qwen-1.5b] [--dtype F16]   D/base (init-model, seeded) and D/inra (expanded,
 *                                                                   adapter perturbed as the benchmarks do)
 *   ref-logits --dir D --out F                                      realign's float64 reference forward in the format
 *                                                                   hf_check.py writes (dry runs without transformers)
 *   logits  --dir D --out F [--device cuda]                         the engine's graph (float16 on CUDA): the same
 *                                                                   ids' last logits per λ
 *   compare --ours OURS.json --ref REF.json --out F                  relative error and argmax per λ
 *   engine  --dir D --out F [--device cuda] [--batches 1,32,64]     throughput through the engine (worker thread),
 *                                                                   mixed greedy and sampled rows, λ = 0.5
 *   graphs  --dir D --out F [--device cuda] [--batches 1,32]        CUDA graphs on against off: decode steps of two
 *                                                                   runners in turn (ms/step, same tokens, capture)
 *   report  --results R                                             R/results.md and R/summary.json from the stages
 *
 * Every subcommand writes its JSON as soon as it has something, so a stage cut short by its time budget still leaves
 * what it measured.
 */
import { isMainThread } from 'node:worker_threads';
import { positionals } from './check/context.ts';
import { engine } from './check/engine.ts';
import { graphs } from './check/graphs.ts';
import { compare, logits, refLogits } from './check/logits.ts';
import { models } from './check/models.ts';
import { report } from './check/report.ts';

export { CHECK_LAMBDAS } from './check/logits.ts';
export { TARGETS } from './check/report.ts';

const commands: Record<string, () => void | Promise<void>> = {
  models,
  'ref-logits': refLogits,
  logits,
  compare,
  engine,
  graphs,
  report,
};
if (isMainThread) {
  const cmd = commands[positionals[0] ?? ''];
  if (!cmd) {
    process.stderr.write(`usage: gpu-check <${Object.keys(commands).join('|')}> [options]\n`);
    process.exit(2);
  }
  await cmd();
  process.exit(0);
}
