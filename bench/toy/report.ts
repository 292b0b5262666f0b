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
  const sweep = ['| λ | mean answer tokens | accuracy |', '| ---: | ---: | ---: |', ...r.inra_sweep.map((p) => `| ${p.lambda} | ${p.mean_tokens.toFixed(1)} | ${pct(p.accuracy)} |`)].join('\n');
  const trra = ['| model | λ | mean answer tokens | accuracy |', '| --- | ---: | ---: | ---: |', ...r.trra.map((t) => `| ${t.model} | ${t.lambda} | ${t.mean_tokens.toFixed(1)} | ${pct(t.accuracy)} |`)].join('\n');
  const examples = r.examples
    ? [`Prompt \`${r.examples.prompt}\` (greedy):`, '', '| λ | completion |', '| ---: | --- |', ...r.examples.completions.map((c) => `| ${c.lambda} | \`${c.text}\` |`)].join('\n')
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
