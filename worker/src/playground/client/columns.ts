/**
 * The generation columns. Each column asks for its own λ (explicit, or a preset) — on a model of several named
 * adapters also a λ on one adapter the tenant may use, or a mix (`concise=0.7, safe=0.5`) — streams
 * /v1/chat/completions (or /v1/completions for raw text), and shows what it asked for next to the x-realign-lambda
 * it got and the mix the backend ran (its usage). Model text is appended to a Text node, so it is never parsed as
 * HTML.
 */
import { HEADERS } from '../../../../shared/src/headers.ts';
import { api, errorMessage, readSse } from './api.ts';
import { defaultMixText, mixLabel, parseMixText, type Mix } from './mix.ts';
import { els, formatLambda, messageOf, state, type Column, type PresetInfo } from './state.ts';

/**
 * λ of the columns when the page opens: the reference, between, and the aligned model — for the default toy model
 * these answer with about 5, 3 and 0–1 checks, so the first Generate shows what λ does.
 */
export const DEFAULT_COLUMN_LAMBDAS = [0, 0.5, 1];
/** With two columns: the two ends. */
const TWO_COLUMN_LAMBDAS = [0, 1];

/** A request to send: its path and JSON body. */
export interface ApiRequest {
  path: string;
  body: Record<string, unknown>;
}

/** Builds a column from the template; mode is 'lambda' or 'preset:<name>'. */
function makeColumn(spec: { mode: string; lambda: number }): Column {
  const template = document.getElementById('column-template') as HTMLTemplateElement;
  const el = template.content.firstElementChild!.cloneNode(true) as HTMLElement;
  const q = <T extends Element>(sel: string) => el.querySelector(sel) as T;
  const col: Column = {
    el,
    mode: q<HTMLSelectElement>('.mode'),
    lambdaInput: q<HTMLInputElement>('.lambda-input'),
    mixInput: q<HTMLInputElement>('.mix-input'),
    asked: q<HTMLElement>('.asked'),
    got: q<HTMLElement>('.got'),
    output: q<HTMLElement>('.output'),
    footer: q<HTMLElement>('.footer'),
    text: document.createTextNode(''),
  };
  col.output.appendChild(col.text);
  col.lambdaInput.value = String(spec.lambda);
  fillModeOptions(col, spec.mode);
  col.mode.addEventListener('change', () => syncColumnInputs(col));
  q<HTMLButtonElement>('.from-slider').addEventListener('click', () => {
    if (!col.mode.value.startsWith('adapter:')) col.mode.value = 'lambda';
    col.lambdaInput.value = els.lambda.value;
    syncColumnInputs(col);
  });
  return col;
}

/** The model's named adapters the tenant may use, when it has several (else none: λ alone chooses). */
export function usableAdapters(): string[] {
  const all = state.presets?.adapters ?? [];
  return all.length > 1 ? all.filter((a) => a.allowed).map((a) => a.name) : [];
}

function presetLabel(p: PresetInfo): string {
  const what = p.mix
    ? 'mix ' + mixLabel(p.mix, formatLambda)
    : (p.adapter ? p.adapter + ' ' : '') + 'λ ' + formatLambda(p.lambda);
  return 'preset ' + p.name + ' (' + what + ')';
}

/**
 * Lists "explicit λ", λ on each usable adapter and "mix" (a model of several adapters), and the tenant's presets in
 * the column's λ source menu, keeping the choice when possible.
 */
export function fillModeOptions(col: Column, wanted: string): void {
  const options: [string, string][] = [];
  if (state.presets === null || state.presets.allow_explicit_lambda) {
    options.push(['lambda', 'explicit λ']);
    const adapters = usableAdapters();
    for (const a of adapters) options.push(['adapter:' + a, 'λ on adapter ' + a]);
    if (adapters.length > 0) options.push(['mix', 'mix of adapters']);
    if (col.mixInput.value === '') col.mixInput.value = defaultMixText(adapters);
  }
  for (const p of state.presets ? state.presets.data : []) options.push(['preset:' + p.name, presetLabel(p)]);
  col.mode.replaceChildren(
    ...options.map(([value, label]) => {
      const o = document.createElement('option');
      o.value = value;
      o.textContent = label;
      return o;
    }),
  );
  if (options.some(([value]) => value === wanted)) col.mode.value = wanted;
  syncColumnInputs(col);
}

function syncColumnInputs(col: Column): void {
  const explicit = col.mode.value === 'lambda' || col.mode.value.startsWith('adapter:');
  col.lambdaInput.disabled = !explicit;
  col.mixInput.hidden = col.mode.value !== 'mix';
  col.el.dataset.mode = col.mode.value;
}

/** Shows 2 or 3 columns, keeping the settings of those that stay. */
export function setColumnCount(n: number): void {
  while (state.columns.length > n) state.columns.pop()!.el.remove();
  const defaults = n === 2 ? TWO_COLUMN_LAMBDAS : DEFAULT_COLUMN_LAMBDAS;
  while (state.columns.length < n) {
    const col = makeColumn({ mode: 'lambda', lambda: defaults[state.columns.length] });
    state.columns.push(col);
    els.columns.appendChild(col.el);
  }
}

type ChoiceBody = { preset?: string; lambda?: number; adapter?: string; mix?: Mix };

/** The λ part of a column's request body and how to describe it; a message when the mix field does not parse. */
function columnChoice(col: Column): { body: ChoiceBody; label: string } | string {
  if (col.mode.value.startsWith('preset:')) {
    const name = col.mode.value.slice('preset:'.length);
    const preset = state.presets!.data.find((p) => p.name === name)!;
    return { body: { preset: name }, label: presetLabel(preset).replace(' (', ' → ').replace(/\)$/, '') };
  }
  if (col.mode.value === 'mix') {
    const mix = parseMixText(col.mixInput.value);
    if (typeof mix === 'string') return mix;
    return { body: { mix }, label: 'mix ' + mixLabel(mix, formatLambda) };
  }
  const lambda = Number(col.lambdaInput.value);
  if (col.mode.value.startsWith('adapter:')) {
    const adapter = col.mode.value.slice('adapter:'.length);
    return { body: { adapter, lambda }, label: adapter + ' λ = ' + formatLambda(lambda) + ' (explicit)' };
  }
  return { body: { lambda }, label: 'λ = ' + formatLambda(lambda) + ' (explicit)' };
}

function setColumnState(col: Column, st: string, footer: string): void {
  col.el.dataset.state = st;
  col.footer.textContent = footer;
  col.footer.classList.toggle('error', st === 'error');
}

interface StreamChunk {
  error?: { message?: string };
  choices?: { delta?: { content?: string }; text?: string; finish_reason?: string | null }[];
  usage?: { completion_tokens: number; realign?: { mix?: Mix } } | null;
}

/**
 * The header line of a column: the λ the edge used (or the mix, x-realign-mix, of a generation on a mix), where it
 * came from, and whether it was clamped.
 */
function gotLabel(res: Response, got: string): string {
  const preset = res.headers.get(HEADERS.preset);
  const source = res.headers.get(HEADERS.lambdaSource);
  const mix = parseMixText(res.headers.get(HEADERS.mix) ?? '');
  return (
    (typeof mix === 'string'
      ? 'λ = ' + formatLambda(Number(got)) + ' (' + HEADERS.lambda + ')'
      : 'mix ' + mixLabel(mix, formatLambda) + ' (' + HEADERS.mix + ')') +
    (source ? ' · ' + source : '') +
    (preset && preset !== 'none' ? ' · ' + preset : '') +
    (res.headers.get(HEADERS.lambdaClamped) ? ' · clamped' : '')
  );
}

/** Streams one generation into col; never throws (failures are shown in the column). */
export async function runColumn(col: Column, request: ApiRequest, signal: AbortSignal): Promise<void> {
  const choice = columnChoice(col);
  col.text.data = '';
  col.el.dataset.lambdaGot = '';
  col.el.dataset.mixGot = '';
  if (typeof choice === 'string') {
    col.asked.textContent = 'mix ' + col.mixInput.value;
    col.got.textContent = '–';
    setColumnState(col, 'error', choice);
    return;
  }
  col.asked.textContent = choice.label;
  col.got.textContent = '…';
  col.el.dataset.lambdaAsked = choice.body.lambda === undefined ? '' : String(choice.body.lambda);
  setColumnState(col, 'waiting', 'waiting for the first byte');
  const started = performance.now();
  try {
    const res = await api(request.path, { method: 'POST', body: { ...request.body, ...choice.body }, signal });
    if (!res.ok) {
      col.got.textContent = '–';
      setColumnState(col, 'error', await errorMessage(res));
      return;
    }
    // a generation on a mix has no single λ (x-realign-mix instead)
    const got = res.headers.get(HEADERS.lambda) || (res.headers.has(HEADERS.mix) ? '' : '?');
    col.el.dataset.lambdaGot = got;
    col.got.textContent = gotLabel(res, got);
    setColumnState(col, 'streaming', 'streaming…');
    let tokens = 0;
    let finish: string | null = null;
    let mix: Mix | undefined;
    const completed = await readSse(res, (data) => {
      const chunk = data as StreamChunk;
      if (chunk.error) throw new Error(chunk.error.message || 'the stream reported an error');
      const c = chunk.choices && chunk.choices[0];
      if (c) {
        const piece = c.delta ? c.delta.content : c.text;
        if (piece) col.text.appendData(piece);
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) {
        tokens = chunk.usage.completion_tokens;
        mix = chunk.usage.realign?.mix;
      }
    });
    if (mix) {
      // the mix the backend ran (after the tenant's bounds), from the usage chunk; the header line shows it already
      // when the column ran a mix, and shows which adapter a λ ran on otherwise
      if (!res.headers.has(HEADERS.mix)) col.got.textContent = gotLabel(res, got) + ' · mix ' + mixLabel(mix, formatLambda);
      col.el.dataset.mixGot = mixLabel(mix);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!completed) setColumnState(col, 'error', 'the stream ended without [DONE] after ' + seconds + ' s');
    else setColumnState(col, 'done', tokens + ' tokens · ' + seconds + ' s · finish: ' + (finish || '?'));
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') setColumnState(col, 'stopped', 'stopped');
    else setColumnState(col, 'error', messageOf(err));
  }
}
