import { describe, expect, it } from 'vitest';
import { defaultMixText, mixLabel, parseMixText } from '../src/playground/client/mix.ts';
import { call } from './helpers/http.ts';

/** The playground's mix field (issue 18): what a column sends as `mix`, and how a mix the backend ran is shown. */
describe('playground mix text', () => {
  it('parses name=λ pairs and says what is wrong with anything else', () => {
    expect(parseMixText('concise=0.7, safe=0.5')).toEqual({ concise: 0.7, safe: 0.5 });
    expect(parseMixText(' concise = -0.25 ,safe=1,')).toEqual({ concise: -0.25, safe: 1 });
    expect(parseMixText('')).toMatch(/empty/);
    expect(parseMixText('concise')).toBe('"concise" is not name=λ');
    expect(parseMixText('Concise=1')).toBe('"Concise" is not an adapter name');
    expect(parseMixText('concise=high')).toBe('the λ of concise ("high") is not a number');
    expect(parseMixText('concise=1, concise=0.5')).toBe('concise is named twice');
  });

  it('labels a mix in its order, and starts a mix column with two adapters at 0.5', () => {
    expect(mixLabel({ safe: 0.5, concise: -1 }, (x) => String(x).replace('-', '−'))).toBe('safe 0.5 + concise −1');
    expect(defaultMixText(['concise', 'safe', 'style'])).toBe('concise=0.5, safe=0.5');
  });

  it('the page has a mix field per column and its script offers adapters and mixes', async () => {
    const html = await (await call('/playground')).text();
    expect(html).toMatch(/<input class="mix-input"[^>]* hidden>/);
    const js = await (await call('/playground/app.js')).text();
    expect(js).toMatch(/(λ|\\u03BB) on adapter /);
    expect(js).toContain('mix of adapters');
  });
});
