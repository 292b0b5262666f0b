/**
 * Issue 17's section of bench/results/report.md: the speed rows of `npm run bench` (quantized-speed.ts) and the
 * accuracy results recorded by quantized-toy.ts and quantized-agreement.ts (read from bench/results/). report.ts
 * renders it inside a full report; run directly, this file replaces the section (between its markers) in an
 * existing report.md from bench/results/quantized-speed.json, without re-running the other benchmarks.
 *
 *   node --import tsx bench/quantized-report.ts
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { agreementTable, type AgreementResult } from './quantized-agreement.ts';
import { speedTable, type QuantSpeedResult } from './quantized-speed.ts';
import { toyTable, type QuantizedToyResult } from './quantized-toy.ts';

/** Issue 17's targets: decode tokens/s over float32's at batch 1, and float32's step over its floor. */
export const QUANT_TARGETS = { int8SpeedupB1: 1.8, int4SpeedupB1: 3, float32OverFloorB1: 1.3, int8Agreement: 0.99 };

export const BEGIN = '<!-- quantized:begin -->';
export const END = '<!-- quantized:end -->';

/** The recorded accuracy results, where present. */
export interface QuantizedAccuracy {
  toy?: QuantizedToyResult;
  agreement?: AgreementResult;
  /**
   * further agreement runs, bench/results/quantized-agreement-<name>.json (e.g. the GPT-2-style init's, the trained
   * toy model's), each rendered after the main one
   */
  agreementMore?: AgreementResult[];
  /** bench/results/quantized-notes.md: what the recorded runs were measured under and what they showed (by hand) */
  notes?: string;
}

export function readQuantizedAccuracy(dir: string): QuantizedAccuracy {
  const read = (f: string) => (existsSync(join(dir, f)) ? JSON.parse(readFileSync(join(dir, f), 'utf8')) : undefined);
  const notes = join(dir, 'quantized-notes.md');
  return {
    toy: read('quantized-toy.json'),
    agreement: read('quantized-agreement.json'),
    agreementMore: existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => /^quantized-agreement-.+\.json$/.test(f))
          .sort()
          .map((f) => read(f) as AgreementResult)
      : [],
    notes: existsSync(notes) ? readFileSync(notes, 'utf8').trim() : undefined,
  };
}

const met = (ok: boolean) => (ok ? 'met' : '**missed**');

/** The section's markdown lines, between the markers. */
export function quantizedSection(speed: QuantSpeedResult | undefined, acc: QuantizedAccuracy): string[] {
  const md: string[] = [BEGIN, '## Quantized weights (issue 17): float32 / int8 / int4 on the CPU', ''];
  if (speed) {
    md.push(
      'Single-model graphs of random checkpoints of each shape, decode steps after 64-token prompts, the three formats in turn (A B C A B C …); medians, and the × float32 column is the median of paired ratios. ' +
        `Block 32, symmetric round-to-nearest, MatMulNBits accuracy_level 4, lm_head and the embedding table quantized too. Sessions as the server opens them (intra-op threads: ${speed.threads}); allocator: ${Object.entries(
          speed.malloc,
        )
          .map(([k, v]) => `${k}=${v ?? 'unset'}`)
          .join(
            ', ',
          )} (bin/realign.js' settings). GB read/step counts every initializer but the embedding table (a step gathers B rows of it); KV reads (64–90 tokens) are left out.`,
      '',
      speedTable(speed),
      '',
      '| target (batch 1) | shape | value | target | |',
      '|---|---|---|---|---|',
    );
    for (const s of speed.speedup.filter((x) => x.batch === 1)) {
      const f32 = speed.rows.find((r) => r.preset === s.preset && r.batch === 1 && r.weights === 'float32');
      md.push(
        `| int8 tokens/s ÷ float32's | ${s.preset} | ${s.int8.toFixed(2)}× | ≥ ${QUANT_TARGETS.int8SpeedupB1}× | ${met(s.int8 >= QUANT_TARGETS.int8SpeedupB1)} |`,
        `| int4 tokens/s ÷ float32's | ${s.preset} | ${s.int4.toFixed(2)}× | ≥ ${QUANT_TARGETS.int4SpeedupB1}× | ${met(s.int4 >= QUANT_TARGETS.int4SpeedupB1)} |`,
      );
      if (f32)
        md.push(
          `| float32 ms/step ÷ floor | ${s.preset} | ${f32.overFloor.toFixed(2)}× | ≤ ${QUANT_TARGETS.float32OverFloorB1}× | ${met(f32.overFloor <= QUANT_TARGETS.float32OverFloorB1)} |`,
        );
    }
    md.push('');
  }
  if (acc.toy) {
    md.push(
      `### Accuracy on the trained toy model (${acc.toy.model}, ${acc.toy.problems} held-out problems of \`npm run toy\`, sampled at temperature ${acc.toy.sampling.temperature} with the same per-problem seeds; measured ${acc.toy.date.slice(0, 16)}, bench/quantized-toy.ts)`,
      '',
      toyTable(acc.toy),
      '',
      "Differences are to float32's cell (points of accuracy, % of mean answer tokens). The toy model's matrices have inner dimension 128 or 384, multiples of the block size 32: every block is full.",
      '',
    );
  }
  if (acc.agreement) {
    const a = acc.agreement;
    const int8 = a.rows.find((r) => r.name === 'int8');
    md.push(
      `### Top-1 agreement with float32 on a random model (measured ${a.date.slice(0, 16)}, bench/quantized-agreement.ts)`,
      '',
      agreementTable(a),
      '',
    );
    if (int8)
      md.push(
        `int8 (the default) top-1 agreement ${(100 * int8.agreement).toFixed(1)}% against the target ≥ ${100 * QUANT_TARGETS.int8Agreement}%: ${met(int8.agreement >= QUANT_TARGETS.int8Agreement)}.`,
        '',
      );
  }
  for (const a of acc.agreementMore ?? []) {
    const int8 = a.rows.find((r) => r.name === 'int8');
    md.push(
      `### Top-1 agreement with float32: ${a.model ? `trained toy model, λ ${a.lambda}` : `random model, ${a.init ?? 'default'} init, ${a.layers ?? 24} layers, ${a.positions} positions${a.rtnErrorRmsByBits ? ', noise-scale sweep' : ''}`} (measured ${a.date.slice(0, 16)}, bench/quantized-agreement.ts)`,
      '',
      agreementTable(a),
      '',
    );
    if (int8)
      md.push(
        `int8 top-1 agreement ${(100 * int8.agreement).toFixed(1)}% (target ≥ ${100 * QUANT_TARGETS.int8Agreement}%: ${met(int8.agreement >= QUANT_TARGETS.int8Agreement)}).`,
        '',
      );
  }
  if (acc.notes) md.push(acc.notes, '');
  md.push(END);
  return md;
}

/** Replaces the section in a report's text (or appends it). */
export function spliceSection(report: string, section: string[]): string {
  const text = section.join('\n');
  const i = report.indexOf(BEGIN);
  const j = report.indexOf(END);
  if (i >= 0 && j > i) return report.slice(0, i) + text + report.slice(j + END.length);
  return report.replace(/\n*$/, '\n\n') + text + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = resolve(import.meta.dirname, 'results');
  const speedFile = join(dir, 'quantized-speed.json');
  const speed = existsSync(speedFile) ? (JSON.parse(readFileSync(speedFile, 'utf8')) as QuantSpeedResult) : undefined;
  const file = join(dir, 'report.md');
  writeFileSync(file, spliceSection(readFileSync(file, 'utf8'), quantizedSection(speed, readQuantizedAccuracy(dir))));
  process.stderr.write(`updated ${file}\n`);
}
