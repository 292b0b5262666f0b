/**
 * InRa adapter training (`realign train-inra`): only the adapter layer(s) of an expanded checkpoint learn, with the
 * SFT loss on response tokens; embeddings, the original layers, the final norm and lm_head stay frozen (as in the
 * paper). The output is the expanded checkpoint with trained adapter tensors: a normal InRa checkpoint.
 */
import { rmSync } from 'node:fs';
import { openCheckpoint } from '../checkpoint/checkpoint.ts';
import { CheckpointError } from '../checkpoint/errors.ts';
import { assertNewFolder } from '../checkpoint/writer.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { loadDataset } from './data.ts';
import { recordedSettings, type TrainReport, type TrainSettings } from './options.ts';
import { writeTrainedCheckpoint } from './output.ts';
import type { TrainProgress } from './progress.ts';
import { trainedAdapter } from './params.ts';
import { train } from './trainer.ts';

/** Inputs of `trainInra`. */
export interface TrainInraOptions extends TrainSettings {
  /** an expanded checkpoint (realign expand) */
  model: string;
  /** the adapter to train (the others stay frozen); needed when the checkpoint has several */
  adapter?: string;
  /** JSONL prompt/response pairs */
  data: string;
  out: string;
  progress?: TrainProgress;
}

/** Trains the adapter and writes the InRa checkpoint to `out`. */
export async function trainInra(o: TrainInraOptions): Promise<TrainReport> {
  assertNewFolder(o.out);
  const ckpt = openCheckpoint(o.model);
  if (ckpt.config.adapterLayers === 0) {
    throw new CheckpointError(
      `${o.model} has no InRa adapter layer: run \`realign expand ${o.model} <dir>\` first and train that`,
      o.model,
    );
  }
  trainedAdapter(ckpt.config, o.adapter); // an unknown name, or none for several adapters, fails before any work
  const { tok, eos, pad } = tokenizerOf(ckpt.tokenizerFile, ckpt.tokenizerConfigFile, o.model);
  const examples = loadDataset(o.data, tok, { eos, maxLength: o.maxLength });
  const workDir = o.workDir ?? `${o.out}.train`;
  const result = await train({
    ...o,
    ckpt,
    trainable: o.adapter === undefined ? { kind: 'adapter' } : { kind: 'adapter', name: o.adapter },
    loss: 'sft',
    examples,
    padId: pad,
    workDir,
    progress: o.progress,
  });
  const report: TrainReport = {
    kind: 'inra',
    out: o.out,
    steps: result.steps,
    losses: result.losses,
    tokens: result.tokens,
    seconds: result.seconds,
    resumedFrom: result.resumedFrom,
    settings: recordedSettings(o),
  };
  writeTrainedCheckpoint(ckpt, o.out, result.params, { extraFiles: { 'realign_train.json': JSON.stringify(report, null, 2) } });
  if (!o.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  return report;
}

/** The tokenizer of a checkpoint with its end-of-turn and pad ids; training needs both. */
export function tokenizerOf(
  file: string | null,
  configFile: string | null,
  dir: string,
): { tok: TextTokenizer; eos: number; pad: number } {
  if (!file)
    throw new CheckpointError(
      `${dir} has no tokenizer.json; training tokenizes its data with the model's tokenizer`,
      dir,
      'tokenizer.json',
    );
  const tok = TextTokenizer.load(file, configFile);
  const eos = tok.eosTokenIds[0];
  if (eos === undefined)
    throw new CheckpointError(
      `${dir}: tokenizer_config.json names no eos_token; the response must end with one`,
      dir,
      'eos_token',
    );
  return { tok, eos, pad: eos };
}
