/** Renders the toy's results as SVG plots and the tables of bench/toy/README.md (between markers). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart, lineChart } from './plot.ts';

/** What run.ts measured. */
export interface ToyResults {
  inra_sweep: { lambda: number; mean_tokens: number; accuracy: number }[];
  trra: { model: string; lambda: number; mean_tokens: number; accuracy: number }[];
  examples?: { prompt: string; completions: { lambda: number; text: string }[] };
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** Writes lambda-length.svg, lambda-accuracy.svg, trra.svg and the README tables into `dir`. */
export function renderReport(dir: string, r: ToyResults): void {
  const markers = [
    { x: 0, text: 'reference' },
    { x: 1, text: 'aligned' },
  ];
  writeFileSync(
    join(dir, 'lambda-length.svg'),
    lineChart({
      title: 'InRa: mean answer length vs λ (toy task)',
      xLabel: 'λ   (z = λ·z_aligned + (1 − λ)·z_reference)',
      yLabel: 'mean answer tokens',
      points: r.inra_sweep.map((p) => ({ x: p.lambda, y: p.mean_tokens, label: p.mean_tokens.toFixed(1) })),
      yMin: 0,
      markers,
    }),
  );
  writeFileSync(
    join(dir, 'lambda-accuracy.svg'),
    lineChart({
      title: 'InRa: accuracy vs λ (toy task)',
      xLabel: 'λ',
      yLabel: 'accuracy',
      points: r.inra_sweep.map((p) => ({ x: p.lambda, y: p.accuracy, label: pct(p.accuracy) })),
      yMin: 0,
      yMax: 1,
      yFormat: (v) => `${Math.round(v * 100)}%`,
      markers,
    }),
  );
  writeFileSync(
    join(dir, 'trra.svg'),
    barChart({
      title: 'TrRa: mean answer length (accuracy in brackets)',
      xLabel: 'mean answer tokens',
      bars: r.trra.map((t) => ({ label: t.model, value: t.mean_tokens, note: `(${pct(t.accuracy)})` })),
    }),
  );
  const sweep = [
    '| λ | mean answer tokens | accuracy |',
    '| ---: | ---: | ---: |',
    ...r.inra_sweep.map((p) => `| ${p.lambda} | ${p.mean_tokens.toFixed(1)} | ${pct(p.accuracy)} |`),
  ].join('\n');
  const trra = [
    '| model | λ | mean answer tokens | accuracy |',
    '| --- | ---: | ---: | ---: |',
    ...r.trra.map((t) => `| ${t.model} | ${t.lambda} | ${t.mean_tokens.toFixed(1)} | ${pct(t.accuracy)} |`),
  ].join('\n');
  const examples = r.examples
    ? [
        `Prompt \`${r.examples.prompt}\` (greedy):`,
        '',
        '| λ | completion |',
        '| ---: | --- |',
        ...r.examples.completions.map((c) => `| ${c.lambda} | \`${c.text}\` |`),
      ].join('\n')
    : '';
  const file = join(dir, 'README.md');
  let text = readFileSync(file, 'utf8');
  const put = (name: string, body: string) => {
    const re = new RegExp(`(<!-- ${name}:begin -->)[\\s\\S]*?(<!-- ${name}:end -->)`);
    if (!re.test(text)) throw new Error(`${file}: missing the <!-- ${name}:begin/end --> markers`);
    text = text.replace(re, (_m, begin: string, end: string) => `${begin}\n${body}\n${end}`);
  };
  put('inra-sweep', sweep);
  put('trra', trra);
  put('examples', examples);
  writeFileSync(file, text);
}

/** One row of the room variant's TrRa table. */
export interface RoomRow {
  model: string;
  lambda: number;
  mean_tokens: number;
  accuracy: number;
  reduction: number;
  accuracy_change_points: number;
}

/** What run.ts measured on the room variant. */
export interface RoomResults {
  inra_sweep: { lambda: number; mean_tokens: number; accuracy: number }[];
  trra: RoomRow[];
  accuracy_first_drops_past_2_points_at_lambda: number | null;
}

/** Fewer tokens than the reference in the paper's Table 1 (DeepSeek-R1-Distill-Qwen-1.5B), cited, not reproduced. */
export const PAPER_TABLE1: Record<string, string> = {
  'λ = 0.5': '17%',
  'λ = 1.5': '37%',
  'λ = 2': '42%',
  'λ = 5': '48%',
  'λ = 10': '51%',
  'iter 1': '54.6%',
  'iter 2': '60.5% (accuracy degraded)',
};

function paperKey(model: string, lambda: number): string | undefined {
  const iter = /^TrRa-iter (\d+)/.exec(model);
  if (iter) return PAPER_TABLE1[`iter ${iter[1]}`];
  if (model.startsWith('TrRa student')) return PAPER_TABLE1[`λ = ${lambda}`];
  return undefined;
}

/** Below this reference accuracy the room report does not read an accuracy drop. */
export const MIN_REFERENCE_ACCURACY = 0.9;

/** Writes trra-grid.svg, trra-grid-accuracy.svg, trra-room.svg and the README's room tables into `dir`. */
export function renderRoomReport(dir: string, r: RoomResults): void {
  const grid = r.trra.filter((t) => t.model.startsWith('TrRa student'));
  // one λ chart over the students: `value` picks the plotted number, shown as a percentage
  const gridChart = (name: string, title: string, xLabel: string, yLabel: string, value: (t: RoomRow) => number, yMax?: number) =>
    writeFileSync(
      join(dir, name),
      lineChart({
        title,
        xLabel,
        yLabel,
        points: grid.map((t) => ({ x: t.lambda, y: value(t), label: pct(value(t)) })),
        yMin: 0,
        yMax,
        yFormat: (v) => `${Math.round(v * 100)}%`,
        markers: [{ x: 1, text: 'aligned' }],
      }),
    );
  gridChart(
    'trra-grid.svg',
    'TrRa students: fewer tokens than the reference vs λ (toy, room variant)',
    'λ of the teacher softmax(λ·z_aligned + (1 − λ)·z_reference)',
    'token reduction vs reference',
    (t) => t.reduction,
  );
  gridChart('trra-grid-accuracy.svg', 'TrRa students: accuracy vs λ (toy, room variant)', 'λ', 'accuracy', (t) => t.accuracy, 1);
  writeFileSync(
    join(dir, 'trra-room.svg'),
    barChart({
      title: 'Room variant: mean answer tokens (accuracy in brackets)',
      xLabel: 'mean answer tokens',
      bars: r.trra.map((t) => ({ label: t.model, value: t.mean_tokens, note: `(${pct(t.accuracy)})` })),
    }),
  );
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)}`;
  const table = [
    '| model | λ | mean answer tokens | fewer tokens than the reference | accuracy | accuracy change (points) | paper, Table 1 (R1-Distill-Qwen-1.5B) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.trra.map(
      (t) =>
        `| ${t.model} | ${t.lambda} | ${t.mean_tokens.toFixed(1)} | ${pct(t.reduction)} | ${pct(t.accuracy)} | ${signed(t.accuracy_change_points)} | ${paperKey(t.model, t.lambda) ?? ''} |`,
    ),
  ].join('\n');
  const sweep = [
    '| λ | mean answer tokens | accuracy |',
    '| ---: | ---: | ---: |',
    ...r.inra_sweep.map((p) => `| ${p.lambda} | ${p.mean_tokens.toFixed(1)} | ${pct(p.accuracy)} |`),
  ].join('\n');
  const drop = r.accuracy_first_drops_past_2_points_at_lambda;
  const refAccuracy = r.trra.find((t) => t.model === 'reference')?.accuracy ?? 0;
  // a drop is only readable where the reference itself solves the task
  const dropLine =
    refAccuracy < MIN_REFERENCE_ACCURACY
      ? `The reference answers only ${pct(refAccuracy)} of the problems correctly (below ${pct(MIN_REFERENCE_ACCURACY)}), so this run cannot say at which λ accuracy drops.`
      : drop === null
        ? "On the grid, no student's accuracy is more than 2 points below the reference's."
        : `Accuracy first drops by more than 2 points (against the reference) at λ = ${drop}.`;
  const file = join(dir, 'README.md');
  let text = readFileSync(file, 'utf8');
  const put = (name: string, body: string) => {
    const re = new RegExp(`(<!-- ${name}:begin -->)[\\s\\S]*?(<!-- ${name}:end -->)`);
    if (!re.test(text)) throw new Error(`${file}: missing the <!-- ${name}:begin/end --> markers`);
    text = text.replace(re, (_m, begin: string, end: string) => `${begin}\n${body}\n${end}`);
  };
  put('room-trra', `${table}\n\n${dropLine}`);
  put('room-inra-sweep', sweep);
  writeFileSync(file, text);
}
