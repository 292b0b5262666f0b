import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from './stop-strings.ts';

/** Every way to cut `text` into non-empty consecutive chunks (2^(n−1) of them). */
function* allSplits(text: string): Generator<string[]> {
  const cuts = text.length - 1;
  for (let mask = 0; mask < 1 << cuts; mask++) {
    const chunks: string[] = [];
    let start = 0;
    for (let i = 0; i < cuts; i++) {
      if (mask & (1 << i)) {
        chunks.push(text.slice(start, i + 1));
        start = i + 1;
      }
    }
    chunks.push(text.slice(start));
    yield chunks;
  }
}

/** Runs chunks through a matcher the way the engine does; returns what the client would receive. */
function run(stops: string[], chunks: string[]): { text: string; stopped: boolean; stop?: string } {
  const matcher = new StopStringMatcher(stops);
  let text = '';
  for (const chunk of chunks) {
    const r = matcher.push(chunk);
    text += r.text;
    if (r.stopped) return { text, stopped: true, stop: r.stop };
  }
  return { text: text + matcher.flush(), stopped: false };
}

/** What a non-streamed search gives: the text before the earliest stop string. */
function expected(stops: string[], text: string): { text: string; stopped: boolean } {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i !== -1 && (at === -1 || i < at)) at = i;
  }
  return at === -1 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

const CASES: [string[], string][] = [
  [['</s>'], 'hey </s> you'],
  [['\n\n'], 'one\nl\n\ntwo'],
  [['abc', 'bcd'], 'xxabxbcdabc'],
  [['aab'], 'aaaab!'],
  [['ab', 'abc'], 'zzabc'],
  [['stop', 'op!'], 'st stoop op!x'],
  [['🎉'], 'party 🎉 now'],
  [['END'], 'no stop in here'],
  [['xyz', 'xy'], 'aaxxyx'],
];

describe('stop strings across chunk boundaries', () => {
  it.each(CASES)('stops %j in %j the same way for every split', (stops, text) => {
    const want = expected(stops, text);
    const wrong: string[][] = [];
    let splits = 0;
    for (const chunks of allSplits(text)) {
      splits++;
      const got = run(stops, chunks);
      const stopOk = !want.stopped || text.slice(want.text.length).startsWith(got.stop!);
      if (got.text !== want.text || got.stopped !== want.stopped || !stopOk) wrong.push(chunks);
    }
    expect(splits).toBe(2 ** (text.length - 1));
    expect(wrong.slice(0, 3)).toEqual([]);
  });

  it('finds the earliest stop when several complete in one chunk', () => {
    expect(run(['world', 'lo w'], ['hello world'])).toEqual({ text: 'hel', stopped: true, stop: 'lo w' });
  });

  it('releases text as soon as it cannot start a stop string', () => {
    const matcher = new StopStringMatcher(['STOP']);
    expect(matcher.push('hello ')).toEqual({ text: 'hello ', stopped: false });
    expect(matcher.push('wor ST')).toEqual({ text: 'wor ', stopped: false });
    expect(matcher.push('ORM')).toEqual({ text: 'STORM', stopped: false });
    expect(matcher.push('S')).toEqual({ text: '', stopped: false });
    expect(matcher.flush()).toBe('S');
  });

  it('ignores everything after a stop and empty stop strings', () => {
    const matcher = new StopStringMatcher(['', 'x']);
    expect(matcher.push('abxcd')).toEqual({ text: 'ab', stopped: true, stop: 'x' });
    expect(matcher.push('more')).toEqual({ text: '', stopped: true });
    expect(matcher.flush()).toBe('');
    expect(new StopStringMatcher(['']).push('abc')).toEqual({ text: 'abc', stopped: false });
  });

  it('has no false positives on random text over a small alphabet (property-style loop)', () => {
    let state = 12345;
    const rand = (n: number) => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n;
    const alphabet = 'ab\n';
    for (let trial = 0; trial < 300; trial++) {
      const text = Array.from({ length: 10 }, () => alphabet[rand(alphabet.length)]).join('');
      const stops = Array.from({ length: 1 + rand(3) }, () =>
        Array.from({ length: 1 + rand(3) }, () => alphabet[rand(3)]).join(''),
      );
      const want = expected(stops, text);
      for (let s = 0; s < 20; s++) {
        const chunks: string[] = [];
        for (let i = 0; i < text.length;) {
          const len = 1 + rand(4);
          chunks.push(text.slice(i, i + len));
          i += len;
        }
        const got = run(stops, chunks);
        expect({ text: got.text, stopped: got.stopped }, `${JSON.stringify(stops)} ${JSON.stringify(chunks)}`).toEqual(want);
      }
    }
  });
});
