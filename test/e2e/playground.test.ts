/**
 * The λ playground in a real browser: Debian's chromium (driven by playwright-core, never a downloaded browser)
 * against the real system — a `realign serve` backend on a tiny InRa model behind `wrangler dev`. The page is
 * used as a person would: type the key, run two generations side by side, move the slider; a screenshot is kept
 * in test-artifacts/playground.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogitsResponse } from '../../shared/src/responses.ts';
import { startSystem, type RunningSystem } from '../../scripts/lib/system.ts';
import { addAdapter } from '../../gpu-backend/src/make/adapters.ts';
import { tinyInra, tinyModel } from '../node/helpers/engine.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../node/helpers/models.ts';

const CHROMIUM = process.env.REALIGN_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = resolve(import.meta.dirname, '../../test-artifacts/playground.png');
const NARROW_SCREENSHOT = resolve(import.meta.dirname, '../../test-artifacts/playground-420px.png');
const TOY_MODEL = resolve(import.meta.dirname, '../../models/toy-inra');
/** The chart writes probabilities with 6 decimals; the page's logits call and ours run the same forward pass. */
const PROB_TOLERANCE = 2e-6;

const seed = testSeed();
let sys: RunningSystem;
let context: BrowserContext;
let page: Page;
const pageProblems: string[] = [];

async function launchChromium(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium; .ci/run does this) or set REALIGN_CHROMIUM`,
    );
  }
  try {
    // a persistent context on a fresh folder: the profile is ours and thrown away, never the user's
    return await chromium.launchPersistentContext(tempDir('realign-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 960 },
    });
  } catch (err) {
    throw new Error(`chromium at ${CHROMIUM} could not be started by playwright-core: ${(err as Error).message}`);
  }
}

beforeAll(async () => {
  const model = tinyInra(seed);
  const entry = { id: 'tiny', mode: 'inra', model, default_lambda: 0.5, lambda_range: [-1, 2], device: 'cpu', threads: 1 };
  // npm start's default model, to see that the page's defaults show what λ does
  const toy = {
    id: 'toy',
    mode: 'inra',
    model: TOY_MODEL,
    default_lambda: 0.5,
    lambda_range: [-1, 2],
    device: 'cpu',
    threads: 1,
  };
  // a model of two named adapters (issue 18): the page offers λ on one of them and mixes
  const adapters = tempDir('realign-e2e-adapters-');
  addAdapter(tinyModel(seed + 1), join(adapters, 'one'), 'concise');
  addAdapter(join(adapters, 'one'), join(adapters, 'multi'), 'safe');
  const multi = { ...entry, id: 'tiny-adapters', model: join(adapters, 'multi') };
  const system = startSystem({
    stateDir: join(tempDir('realign-e2e-'), 'state'),
    backends: [{ models: [entry, toy, multi] }],
    models: [
      { id: 'tiny', defaultLambda: 0.5 },
      { id: 'toy', defaultLambda: 0.5 },
      { id: 'tiny-adapters', defaultLambda: 0.5 },
    ],
  });
  // both settle before either is used, so a failed launch never leaves the system running unowned
  const [browser, started] = await Promise.allSettled([launchChromium(), system]);
  if (started.status === 'fulfilled') sys = started.value;
  if (browser.status === 'fulfilled') context = browser.value;
  if (browser.status === 'rejected') throw browser.reason;
  if (started.status === 'rejected') throw started.reason;
  page = await context.newPage();
  page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageProblems.push(`console error: ${msg.text()}`);
  });
}, 300_000);

afterAll(async () => {
  await context?.close();
  await sys?.stop();
  cleanupTempDirs();
}, 60_000);

/**
 * Code run in the page, as text: the root tsconfig has no DOM library (it checks Node code), so browser globals
 * stay out of the TypeScript here. It logs each append to a column's text with a timestamp.
 */
const RECORD_APPENDS = `
  window.appends = [];
  document.querySelectorAll('#columns .output').forEach((out, col) => {
    new MutationObserver((records) => records.forEach(() => window.appends.push({ col, t: performance.now() }))).observe(out, { characterData: true, subtree: true });
  });`;

/** The bars of the chart at the slider's λ. */
async function bars(): Promise<{ lambda: string; bars: { id: number; prob: number }[] }> {
  const lambda = (await page.locator('#chart .bars').getAttribute('data-lambda'))!;
  const rects = await page
    .locator('#chart rect.bar')
    .evaluateAll((els) => els.map((r) => [r.getAttribute('data-token-id'), r.getAttribute('data-prob')]));
  return { lambda, bars: rects.map(([id, prob]) => ({ id: Number(id), prob: Number(prob) })) };
}

/** The top tokens at one λ, asked of the worker directly (the same prompt and answer so far the page sends). */
async function topAt(lambda: number, prompt: string): Promise<{ id: number; prob: number }[]> {
  const prefix = await page.inputValue('#chart-prefix');
  const messages = [{ role: 'user', content: prompt }, ...(prefix === '' ? [] : [{ role: 'assistant', content: prefix }])];
  const res = await fetch(`${sys.edgeUrl}/v1/logits`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages, continue_final_message: prefix !== '', lambdas: [lambda], top_logprobs: 6 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as LogitsResponse;
  return body.results[0]!.positions.at(-1)!.top_logprobs.map((t) => ({ id: t.token_id, prob: Math.exp(t.logprob) }));
}

function expectSameTop(drawn: { id: number; prob: number }[], asked: { id: number; prob: number }[]): void {
  expect(drawn.map((b) => b.id)).toEqual(asked.map((t) => t.id));
  drawn.forEach((b, i) => expect(Math.abs(b.prob - asked[i]!.prob), `token ${b.id}`).toBeLessThanOrEqual(PROB_TOLERANCE));
}

/** What a generation column shows once it has ended. */
interface ColumnSeen {
  state: string | null;
  /** data-lambda-asked / data-lambda-got / data-mix-got */
  askedLambda: string | null;
  got: string | null;
  mixGot: string | null;
  asked: string | null;
  gotText: string | null;
  text: string;
  footer: string;
}

/** Waits until every column has ended (done or error), then reads what each shows. */
async function columnsWhenEnded(columns: Locator, timeout: number, interval: number): Promise<ColumnSeen[]> {
  // polled from here: waitForFunction would evaluate a string in the page, which its CSP (rightly) refuses
  const states = () => columns.evaluateAll((els) => els.map((el) => el.getAttribute('data-state')));
  await expect
    .poll(async () => (await states()).every((st) => st === 'done' || st === 'error'), { timeout, interval })
    .toBe(true);
  return columns.evaluateAll((els) =>
    els.map((el) => ({
      state: el.getAttribute('data-state'),
      askedLambda: el.getAttribute('data-lambda-asked'),
      got: el.getAttribute('data-lambda-got'),
      mixGot: el.getAttribute('data-mix-got'),
      asked: el.querySelector('.asked')!.textContent,
      gotText: el.querySelector('.got')!.textContent,
      text: el.querySelector('.output')!.textContent!,
      footer: el.querySelector('.footer')!.textContent!,
    })),
  );
}

describe(`the playground in chromium (seed ${seed})`, () => {
  it('connects with a typed key and shows the seeded presets and the chart at the default λ', async () => {
    const res = await page.goto(`${sys.edgeUrl}/playground`);
    expect(res!.status()).toBe(200);
    await page.fill('#api-key', sys.apiKey);
    await page.click('#connect');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    expect(await page.locator('#presets button').allTextContents()).toEqual(['fast · λ 1', 'balanced · λ 0.5', 'deep · λ −0.5']);
    expect(await page.inputValue('#lambda')).toBe('0.5');
    await page.waitForSelector('#chart rect.bar', { timeout: 20_000 });
    const chart = await bars();
    expect(chart.lambda).toBe('0.5');
    expectSameTop(chart.bars, await topAt(0.5, await page.inputValue('#prompt')));
    expect(await page.evaluate<string | null>(`localStorage.getItem('realign.playground.apiKey')`)).toBe(sys.apiKey);
  });

  it('streams two generations side by side, each showing the λ it asked for and the x-realign-lambda it got', async () => {
    await page.selectOption('#column-count', '2');
    const columns = page.locator('#columns .column');
    expect(await columns.count()).toBe(2);
    await columns.nth(0).locator('.lambda-input').fill('1.75');
    await columns.nth(1).locator('.mode').selectOption('preset:deep');
    await page.fill('#max-tokens', '24');
    // to see that both streams were open at the same time
    await page.evaluate(RECORD_APPENDS);
    await page.click('#generate');
    const seen = await columnsWhenEnded(columns, 60_000, 100);
    expect(
      seen.map((s) => s.state),
      JSON.stringify(seen),
    ).toEqual(['done', 'done']);
    expect(seen.map((s) => s.got)).toEqual(['1.75', '-0.5']);
    expect(seen[0]!.asked).toBe('λ = 1.75 (explicit)');
    expect(seen[1]!.asked).toBe('preset deep → λ −0.5');
    expect(seen[0]!.gotText).toContain('λ = 1.75 (x-realign-lambda) · explicit');
    expect(seen[1]!.gotText).toContain('λ = −0.5 (x-realign-lambda) · preset · deep');
    // the tiny model has random weights: it may draw its end-of-sequence token before max_tokens (24)
    const tokens = seen.map((s) => {
      expect(s.text!.length).toBeGreaterThan(0);
      const m = /^(\d+) tokens · [\d.]+ s · finish: (length|stop)$/.exec(s.footer ?? '');
      expect(m, s.footer ?? '').not.toBeNull();
      const n = Number(m![1]);
      expect(n).toBeLessThanOrEqual(24);
      if (m![2] === 'length') expect(n).toBe(24);
      return n;
    });

    const appends = await page.evaluate<{ col: number; t: number }[]>('window.appends');
    const span = (col: number) => {
      const ts = appends.filter((a) => a.col === col).map((a) => a.t);
      return { n: ts.length, first: Math.min(...ts), last: Math.max(...ts) };
    };
    const [a, b] = [span(0), span(1)];
    // streamed: text arrived in several pieces per column, and the two streams overlapped in time (a column that
    // stopped at its first tokens cannot show either)
    expect(a.n).toBeGreaterThan(Math.min(3, tokens[0]! - 2));
    expect(b.n).toBeGreaterThan(Math.min(3, tokens[1]! - 2));
    if (Math.min(...tokens) >= 8) expect(a.first < b.last && b.first < a.last, JSON.stringify({ a, b })).toBe(true);
  });

  it('redraws the chart from the same logits call as the slider moves', async () => {
    const before = await bars();
    const requests = await page.getAttribute('#chart', 'data-requests');
    await page.focus('#lambda');
    await page.keyboard.press('Home');
    expect(await page.textContent('#lambda-value')).toBe('−1');
    const atMin = await bars();
    expect(atMin.lambda).toBe('-1');
    expect(atMin.bars.map((b) => b.prob)).not.toEqual(before.bars.map((b) => b.prob));
    expectSameTop(atMin.bars, await topAt(-1, await page.inputValue('#prompt')));

    // two steps of 0.125 up from -1, by keyboard as a person would
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    expect((await bars()).lambda).toBe('-0.75');
    await page.click('#presets button[data-preset="fast"]');
    expect((await bars()).lambda).toBe('1');
    expect(await page.getAttribute('#chart', 'data-requests')).toBe(requests);

    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(pageProblems).toEqual([]);
  });
  it('opens connected with the dev key, and its defaults show λ changing the answer of the default model', async () => {
    await page.evaluate('localStorage.clear()');
    await page.goto(`${sys.edgeUrl}/playground`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    expect(await page.inputValue('#api-key')).toBe(sys.apiKey);
    await page.selectOption('#model', 'toy');
    await page.waitForSelector('#chart rect.bar', { timeout: 20_000 });
    // the chart at the decision point: the reference writes a check, the aligned model answers
    await page.click('#presets button[data-preset="deep"]');
    const deep = await bars();
    await page.click('#presets button[data-preset="fast"]');
    const fast = await bars();
    expect(deep.bars[0]!.id, JSON.stringify({ deep, fast })).not.toBe(fast.bars[0]!.id);

    const columns = page.locator('#columns .column');
    expect(await columns.count()).toBe(3);
    await page.click('#generate');
    const seen = await columnsWhenEnded(columns, 90_000, 200);
    expect(seen.map((s) => s.askedLambda)).toEqual(['0', '0.5', '1']);
    const tokens = seen.map((s) => {
      const m = /^(\d+) tokens · [\d.]+ s · finish: (length|stop)$/.exec(s.footer);
      expect(m, s.footer).not.toBeNull();
      // nothing cut off by the default max tokens
      expect(m![2], s.text).toBe('stop');
      expect(s.text).toMatch(/answer 1173$/);
      return Number(m![1]);
    });
    const checks = seen.map((s) => (s.text.match(/check/g) ?? []).length);
    // greedy (temperature 0 is the default): λ 0 checks most, λ 1 least, and the answers get shorter
    expect(checks[0], JSON.stringify(seen)).toBeGreaterThan(checks[1]!);
    expect(checks[1], JSON.stringify(seen)).toBeGreaterThan(checks[2]!);
    expect(tokens[0]).toBeGreaterThan(tokens[1]!);
    expect(tokens[1]).toBeGreaterThan(tokens[2]!);
  });

  it('keeps the chart readable on a 420 px wide screen', async () => {
    await page.setViewportSize({ width: 420, height: 1100 });
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await page.waitForSelector('#chart rect.bar', { timeout: 20_000 });
    expect(await page.getAttribute('#chart', 'data-layout')).toBe('narrow');
    // labels are drawn at 11 px in SVG units; scaled to the page they must stay at least 10 px tall
    const heights = await page.locator('#chart text').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().height));
    expect(heights.length).toBeGreaterThan(10);
    expect(Math.min(...heights)).toBeGreaterThanOrEqual(10);
    // nothing wider than the screen
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(420);
    mkdirSync(resolve(NARROW_SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: NARROW_SCREENSHOT, fullPage: true });
    expect(pageProblems).toEqual([]);
  });

  it('on a model of several adapters, a column runs λ on one adapter and another a mix, each showing the mix it ran', async () => {
    await page.setViewportSize({ width: 1280, height: 960 });
    // the start seeded the catalogue row from the backend's /v1/models: its adapters, the first the default
    const rows = (await (await sys.admin('GET', '/admin/models')).json()) as {
      data: { id: string; adapters: string[] | null }[];
    };
    expect(rows.data.find((m) => m.id === 'tiny-adapters')?.adapters).toEqual(['concise', 'safe']);
    // the tenant may use both; safe's λ is bounded to [0, 0.6] (a mix's λ above it is rejected, as an explicit λ)
    const policy = await sys.admin('PUT', '/admin/tenants/dev/policies/tiny-adapters', {
      min_lambda: -1,
      max_lambda: 2,
      adapter_ranges: { safe: { min_lambda: 0, max_lambda: 0.6 } },
    });
    expect(policy.status).toBe(200);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await page.selectOption('#model', 'tiny-adapters');
    const columns = page.locator('#columns .column');
    await expect
      .poll(
        async () =>
          columns
            .nth(0)
            .locator('.mode option')
            .evaluateAll((os) => os.map((o) => o.getAttribute('value'))),
        {
          timeout: 20_000,
        },
      )
      .toEqual(expect.arrayContaining(['lambda', 'adapter:concise', 'adapter:safe', 'mix']));
    await page.selectOption('#column-count', '3');
    await columns.nth(0).locator('.mode').selectOption('adapter:safe');
    await columns.nth(0).locator('.lambda-input').fill('0.5');
    await columns.nth(1).locator('.mode').selectOption('mix');
    expect(await columns.nth(1).locator('.mix-input').isVisible()).toBe(true);
    await columns.nth(1).locator('.mix-input').fill('concise=1.5, safe=0.25');
    await columns.nth(2).locator('.mode').selectOption('mix');
    await columns.nth(2).locator('.mix-input').fill('concise=0.5, safe=0.9');
    await page.fill('#max-tokens', '8');
    await page.click('#generate');
    const seen = await columnsWhenEnded(columns, 60_000, 100);
    expect(
      seen.map((s) => s.state),
      JSON.stringify(seen),
    ).toEqual(['done', 'done', 'error']);
    expect(seen[0]).toMatchObject({ asked: 'safe λ = 0.5 (explicit)', mixGot: 'safe 0.5' });
    expect(seen[1]).toMatchObject({ asked: 'mix concise 1.5 + safe 0.25', mixGot: 'concise 1.5 + safe 0.25' });
    // a mix has no single λ: the column's header line shows the edge's x-realign-mix
    expect(seen[1]!.gotText).toContain('mix concise 1.5 + safe 0.25 (x-realign-mix)');
    expect(seen[1]!.gotText).not.toContain('x-realign-lambda');
    expect(seen[0]!.gotText).toContain('λ = 0.5 (x-realign-lambda)');
    // safe's own bound refuses 0.9, naming the field
    expect(seen[2]!.footer).toContain('`mix.safe` must be in [0, 0.6]');
    // the browser logs that refusal, and nothing else went wrong
    expect(pageProblems).toEqual([
      'console error: Failed to load resource: the server responded with a status of 400 (Bad Request)',
    ]);
  });
});
