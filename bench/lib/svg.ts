/** Hand-drawn SVG charts for the benchmark report: grouped bars and lines, no dependencies. */

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Grouped bar chart: one group per category, one bar per series. `hline` draws a reference line (a target). */
export function barChart(opts: {
  title: string;
  yLabel: string;
  categories: string[];
  series: { name: string; values: number[] }[];
  hline?: { value: number; label: string };
}): string {
  const W = 640;
  const H = 360;
  const m = { l: 64, r: 16, t: 40, b: 64 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const max = niceMax(Math.max(...opts.series.flatMap((s) => s.values), opts.hline?.value ?? 0) * 1.05);
  const y = (v: number) => m.t + ph - (v / max) * ph;
  const gw = pw / opts.categories.length;
  const bw = (gw * 0.8) / opts.series.length;
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(opts.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${+v.toPrecision(3)}</text>`);
  }
  parts.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(opts.yLabel)}</text>`,
  );
  opts.categories.forEach((c, ci) => {
    const gx = m.l + ci * gw + gw * 0.1;
    opts.series.forEach((s, si) => {
      const v = s.values[ci];
      if (!Number.isFinite(v)) return;
      parts.push(
        `<rect x="${gx + si * bw}" y="${y(v)}" width="${bw - 2}" height="${m.t + ph - y(v)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.name} ${c}: ${v.toPrecision(4)}`)}</title></rect>`,
      );
    });
    parts.push(`<text x="${m.l + ci * gw + gw / 2}" y="${m.t + ph + 16}" text-anchor="middle" font-size="11">${esc(c)}</text>`);
  });
  if (opts.hline) {
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${y(opts.hline.value)}" y2="${y(opts.hline.value)}" stroke="#111" stroke-dasharray="5 4"/>`,
    );
    parts.push(
      `<text x="${W - m.r}" y="${y(opts.hline.value) - 4}" text-anchor="end" font-size="11">${esc(opts.hline.label)}</text>`,
    );
  }
  opts.series.forEach((s, si) => {
    const lx = m.l + si * 150;
    parts.push(
      `<rect x="${lx}" y="${H - 24}" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/><text x="${lx + 16}" y="${H - 14}" font-size="11">${esc(s.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}

/** Line chart over numeric x (e.g. concurrency), one line per series. */
export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  x: number[];
  series: { name: string; values: number[] }[];
}): string {
  const W = 640;
  const H = 360;
  const m = { l: 64, r: 16, t: 40, b: 64 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const max = niceMax(Math.max(...opts.series.flatMap((s) => s.values.filter(Number.isFinite))) * 1.05);
  const xs = opts.x;
  const X = (i: number) => m.l + (xs.length === 1 ? pw / 2 : (i / (xs.length - 1)) * pw);
  const Y = (v: number) => m.t + ph - (v / max) * ph;
  const parts: string[] = [
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(opts.title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#e5e7eb"/><text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="11">${+v.toPrecision(3)}</text>`,
    );
  }
  xs.forEach((x, i) => parts.push(`<text x="${X(i)}" y="${m.t + ph + 16}" text-anchor="middle" font-size="11">${x}</text>`));
  parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle" font-size="12">${esc(opts.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(opts.yLabel)}</text>`,
  );
  opts.series.forEach((s, si) => {
    const pts = s.values.map((v, i) => (Number.isFinite(v) ? `${X(i)},${Y(v)}` : null)).filter(Boolean);
    const c = COLORS[si % COLORS.length];
    parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`);
    s.values.forEach(
      (v, i) =>
        Number.isFinite(v) &&
        parts.push(
          `<circle cx="${X(i)}" cy="${Y(v)}" r="3" fill="${c}"><title>${esc(`${s.name} @${xs[i]}: ${v.toPrecision(4)}`)}</title></circle>`,
        ),
    );
    parts.push(
      `<rect x="${m.l + si * 150}" y="${H - 24}" width="12" height="12" fill="${c}"/><text x="${m.l + si * 150 + 16}" y="${H - 14}" font-size="11">${esc(s.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}
