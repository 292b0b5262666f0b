/**
 * The page's state and its elements, shared by the playground's modules. `els` is filled once by `bindElements`
 * when the DOM is ready; every other module reads it after that.
 */
import type { AdapterInfo, PresetInfo, PresetsResponse as PresetsAnswer } from '../../../../shared/src/presets-response.ts';

export type { AdapterInfo, PresetInfo, PresetsAnswer };

/** One blended top list per λ of the chart's grid. */
export interface TopToken {
  token_id: number;
  token: string;
  logprob: number;
}

/** What the chart draws: the λ grid and, for each λ, the top tokens at the last position. */
export interface ChartGrid {
  lambdas: number[];
  tops: TopToken[][];
}

/** One generation column. */
export interface Column {
  el: HTMLElement;
  mode: HTMLSelectElement;
  lambdaInput: HTMLInputElement;
  /** `name=λ, …` of a mix column (shown in mode `mix` only). */
  mixInput: HTMLInputElement;
  asked: HTMLElement;
  got: HTMLElement;
  output: HTMLElement;
  footer: HTMLElement;
  text: Text;
}

/** Mutable page state. */
export const state = {
  key: '',
  presets: null as PresetsAnswer | null,
  grid: null as ChartGrid | null,
  columns: [] as Column[],
  controller: null as AbortController | null,
  chartSeq: 0,
  chartTimer: 0 as ReturnType<typeof setTimeout> | 0,
};

/** The page's elements by role. */
export interface Elements {
  apiKey: HTMLInputElement;
  connect: HTMLButtonElement;
  model: HTMLSelectElement;
  status: HTMLElement;
  prompt: HTMLTextAreaElement;
  format: HTMLSelectElement;
  maxTokens: HTMLInputElement;
  temperature: HTMLInputElement;
  columnCount: HTMLSelectElement;
  generate: HTMLButtonElement;
  stop: HTMLButtonElement;
  lambda: HTMLInputElement;
  lambdaValue: HTMLOutputElement;
  rangeNote: HTMLElement;
  presets: HTMLElement;
  chart: SVGSVGElement;
  chartNote: HTMLElement;
  chartPrefix: HTMLInputElement;
  columns: HTMLElement;
}

export const els = {} as Elements;

/** Looks the page's elements up by id (once, at start). */
export function bindElements(): void {
  const byId = <T extends Element>(id: string): T => {
    const el = document.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id}`);
    return el as unknown as T;
  };
  Object.assign(els, {
    apiKey: byId('api-key'),
    connect: byId('connect'),
    model: byId('model'),
    status: byId('status'),
    prompt: byId('prompt'),
    format: byId('format'),
    maxTokens: byId('max-tokens'),
    temperature: byId('temperature'),
    columnCount: byId('column-count'),
    generate: byId('generate'),
    stop: byId('stop'),
    lambda: byId('lambda'),
    lambdaValue: byId('lambda-value'),
    rangeNote: byId('range-note'),
    presets: byId('presets'),
    chart: byId('chart'),
    chartNote: byId('chart-note'),
    chartPrefix: byId('chart-prefix'),
    columns: byId('columns'),
  } satisfies Record<keyof Elements, Element>);
}

/** Formats a λ for display: at most three decimals, no trailing zeros, a real minus sign. */
export function formatLambda(x: number): string {
  return String(Math.round(x * 1000) / 1000).replace('-', '−');
}

/** The message of a thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error && err.message ? err.message : String(err);
}
