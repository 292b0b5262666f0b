/**
 * The playground's text form of an adapter mix (issue 18): `concise=0.7, safe=0.5` in a column's mix field, and
 * how a mix the backend ran is shown (`concise 0.7 + safe 0.5`). Pure functions, no DOM.
 */

/** λ per adapter name. */
export type Mix = Record<string, number>;

const NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** Parses `name=λ` pairs separated by commas (spaces allowed); a message saying what is wrong otherwise. */
export function parseMixText(text: string): Mix | string {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) return 'the mix is empty: write name=λ pairs, e.g. concise=0.7, safe=0.5';
  const mix: Mix = {};
  for (const part of parts) {
    const m = /^([^=\s]+)\s*=\s*(\S+)$/.exec(part);
    if (m === null) return `"${part}" is not name=λ`;
    const [, name, value] = m as unknown as [string, string, string];
    const lambda = Number(value);
    if (!NAME.test(name)) return `"${name}" is not an adapter name`;
    if (value.trim() === '' || !Number.isFinite(lambda)) return `the λ of ${name} ("${value}") is not a number`;
    if (Object.hasOwn(mix, name)) return `${name} is named twice`;
    mix[name] = lambda;
  }
  return mix;
}

/** A mix for display: `concise 0.7 + safe 0.5`, in the order given. */
export function mixLabel(mix: Mix, format: (x: number) => string = String): string {
  return Object.entries(mix)
    .map(([name, lambda]) => name + ' ' + format(lambda))
    .join(' + ');
}

/** The mix text a new mix column starts with: the first two adapters at 0.5 each. */
export function defaultMixText(adapters: string[]): string {
  return adapters
    .slice(0, 2)
    .map((a) => a + '=0.5')
    .join(', ');
}
