/** gpu-check report: results.md and summary.json from the stage files, against the targets of issue 14. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { values, save, need } from './context.ts';

/** The targets of issue 14, printed beside each number. */
export const TARGETS = {
  batch1StepMs: 2.5,
  batch32TokensPerSecond: 8000,
  prefillBatch32TokensPerSecond: 30000,
  relErr: 5e-3,
  /** at batch 32, no request asking for logprobs */
  hostDeviceBytesPerStep: 64 * 1024,
};

const read = (file: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};
const fmt = (v: unknown, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : 'n/a');
const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'meets' : 'misses');

/** results.md and summary.json from the stage files. */
export function report(): void {
  const R = need('results', values.results);
  const stages = existsSync(join(R, 'stages.jsonl'))
    ? readFileSync(join(R, 'stages.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
  const env = read(join(R, 'env.json'));
  const mdl = read(join(R, 'models.json'));
  const cor = read(join(R, 'correctness.json'));
  const thr = read(join(R, 'throughput.json'));
  const gra = read(join(R, 'cuda-graphs.json'));
  const table = (thr?.table as Record<string, number>[] | undefined) ?? [];
  const at = (B: number) => table.find((r) => r.batch === B && r.error === undefined);
  const meets = (v: number | undefined, ok: (v: number) => boolean) =>
    typeof v === 'number' && Number.isFinite(v) ? ok(v) : undefined;
  const b1 = at(1);
  const b32 = at(32);
  const corRows = (cor?.rows as { lambda: number; relErr: number; argmaxEqual: boolean; pass: boolean }[] | undefined) ?? [];
  const checks = {
    batch1StepMs: {
      value: b1?.msPerStep,
      target: `<= ${TARGETS.batch1StepMs}`,
      pass: meets(b1?.msPerStep, (v) => v <= TARGETS.batch1StepMs),
    },
    batch32TokensPerSecond: {
      value: b32?.newTokensPerSecond,
      target: `>= ${TARGETS.batch32TokensPerSecond}`,
      pass: meets(b32?.newTokensPerSecond, (v) => v >= TARGETS.batch32TokensPerSecond),
    },
    prefillBatch32TokensPerSecond: {
      value: b32?.prefillTokensPerSecond,
      target: `>= ${TARGETS.prefillBatch32TokensPerSecond}`,
      pass: meets(b32?.prefillTokensPerSecond, (v) => v >= TARGETS.prefillBatch32TokensPerSecond),
    },
    hostDeviceBytesPerStepBatch32: {
      value: b32?.hostDeviceBytesPerStep ?? undefined,
      target: `<= ${TARGETS.hostDeviceBytesPerStep}`,
      pass: meets(b32?.hostDeviceBytesPerStep ?? undefined, (v) => v <= TARGETS.hostDeviceBytesPerStep),
    },
    logits: {
      value: corRows.length ? Math.max(...corRows.map((r) => r.relErr)) : undefined,
      target: `<= ${TARGETS.relErr}, same argmax`,
      pass: corRows.length ? corRows.every((r) => r.pass) : undefined,
    },
  };
  const md: string[] = [];
  md.push(`# realign one-shot GPU check${env?.dryRun ? ' (DRY RUN on the CPU: tiny shape, numbers mean nothing)' : ''}`, '');
  md.push(
    `Card: ${String(env?.gpu ?? 'n/a')}. Preset ${String(mdl?.preset ?? 'n/a')} (${String(mdl?.dtype ?? '')} weights, InRa ${String(mdl?.inraLayers ?? '?')} layers), device ${String(thr?.device ?? cor?.device ?? 'n/a')}, λ = 0.5, ${String(thr?.promptTokens ?? '?')}-token prompts, ${String(thr?.newTokens ?? '?')} new tokens, ${String(thr?.rows ?? '')}. Started ${String(env?.started ?? '?')}.`,
    '',
    `Command: \`${String(env?.command ?? 'bench/gpu/gpu-check.sh')}\``,
    '',
  );
  md.push('| stage | status | seconds | budget s | note |', '| --- | --- | --- | --- | --- |');
  for (const s of stages)
    md.push(`| ${String(s.name)} | ${String(s.status)} | ${fmt(s.seconds)} | ${String(s.budget)} | ${String(s.note ?? '')} |`);
  md.push('', '| measure | value | target | verdict |', '| --- | --- | --- | --- |');
  md.push(
    `| batch 1 ms per decode step | ${fmt(checks.batch1StepMs.value, 2)} | ${checks.batch1StepMs.target} | ${verdict(checks.batch1StepMs.pass)} |`,
  );
  md.push(
    `| batch 32 new tokens/s | ${fmt(checks.batch32TokensPerSecond.value, 0)} | ${checks.batch32TokensPerSecond.target} | ${verdict(checks.batch32TokensPerSecond.pass)} |`,
  );
  md.push(
    `| prefill at batch 32 tokens/s | ${fmt(checks.prefillBatch32TokensPerSecond.value, 0)} | ${checks.prefillBatch32TokensPerSecond.target} | ${verdict(checks.prefillBatch32TokensPerSecond.pass)} |`,
  );
  md.push(
    `| host↔device bytes per decode step at batch 32 | ${fmt(checks.hostDeviceBytesPerStepBatch32.value, 0)} | ${checks.hostDeviceBytesPerStepBatch32.target} | ${verdict(checks.hostDeviceBytesPerStepBatch32.pass)} |`,
  );
  md.push(
    `| logits vs ${String(cor?.reference ?? 'transformers float32')}: max relative error | ${checks.logits.value === undefined ? 'n/a' : checks.logits.value.toExponential(2)} | ${checks.logits.target} | ${verdict(checks.logits.pass)} |`,
  );
  md.push(
    '',
    '| batch | ms/step | new tokens/s | prefill tokens/s | end-to-end tokens/s | host↔device bytes/step | decode steps |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of table) {
    if (r.error !== undefined) md.push(`| ${r.batch} | error: ${String(r.error).split('\n')[0]} | | | | | |`);
    else
      md.push(
        `| ${r.batch} | ${fmt(r.msPerStep, 2)} | ${fmt(r.newTokensPerSecond, 0)} | ${fmt(r.prefillTokensPerSecond, 0)} | ${fmt(r.endToEndTokensPerSecond, 0)} | ${r.hostDeviceBytesPerStep === null ? 'n/a' : fmt(r.hostDeviceBytesPerStep, 0)} | ${r.decodeSteps} |`,
      );
  }
  const graphRows = (gra?.table as Record<string, number | string | null>[] | undefined) ?? [];
  if (graphRows.length) {
    md.push(
      '',
      `CUDA graphs on against off (${String(gra?.steps)} decode steps per side in turn, ${String(gra?.rows)}; capture session attached: ${String(gra?.captureAttached)}):`,
      '',
      '| batch | off ms/step | on ms/step | off / on | same tokens | row 0 logits rel. error | captured runs | fallbacks | graph ids | capture error |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const r of graphRows) {
      if (r.error !== undefined) md.push(`| ${r.batch} | error: ${String(r.error).split('\n')[0]} | | | | | | | | |`);
      else
        md.push(
          `| ${r.batch} | ${fmt(r.offMsPerStep, 2)} | ${fmt(r.onMsPerStep, 2)} | ${fmt(r.speedup, 2)} | ${fmt(typeof r.tokenAgreement === 'number' ? 100 * r.tokenAgreement : undefined, 1)}% | ${typeof r.logitsRelErrRow0 === 'number' ? r.logitsRelErrRow0.toExponential(2) : 'n/a'} | ${String(r.capturedRuns)} | ${String(r.fallbacks)} | ${String(r.graphIds)} | ${String(r.captureError ?? '')} |`,
        );
    }
  }
  if (corRows.length) {
    md.push('', '| λ | relative error | same argmax | ours / theirs |', '| --- | --- | --- | --- |');
    for (const r of corRows as ((typeof corRows)[number] & { ours: number; theirs: number })[])
      md.push(`| ${r.lambda} | ${r.relErr.toExponential(2)} | ${r.argmaxEqual} | ${r.ours} / ${r.theirs} |`);
  }
  md.push('');
  writeFileSync(join(R, 'results.md'), md.join('\n'));
  save(join(R, 'summary.json'), { env, stages, models: mdl, correctness: cor, throughput: thr, cudaGraphs: gra, checks });
  process.stdout.write(md.join('\n'));
}
