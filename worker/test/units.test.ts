import { describe, expect, it } from 'vitest';
import type { ChatCompletion } from '../../shared/src/responses.ts';
import { eventData, SseSplitter } from '../../shared/src/sse.ts';
import { canonicalJson } from '../src/cache/cache-key.ts';
import { decideCaching } from '../src/cache/cache-policy.ts';
import { replayAsSse } from '../src/cache/sse-replay.ts';
import { StreamAssembler } from '../src/cache/stream-assembler.ts';
import { formatDuration } from '../src/ratelimit/rate-limit-headers.ts';
import { msUntil, refill } from '../src/ratelimit/token-bucket.ts';
import { HealthBook } from '../src/routing/health-book.ts';
import { weightedOrder } from '../src/routing/plan-attempts.ts';

const completion: ChatCompletion = {
  id: 'c1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  lambda: 0.5,
  choices: [
    { index: 0, message: { role: 'assistant', content: 'hello world' }, logprobs: null, finish_reason: 'stop' },
    { index: 1, message: { role: 'assistant', content: 'bye' }, logprobs: null, finish_reason: 'length' },
  ],
  usage: { prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 },
};

describe('worker building blocks', () => {
  it('weightedOrder draws by weight and returns every backend once', () => {
    const backends = [
      { url: 'a', weight: 3 },
      { url: 'b', weight: 1 },
    ];
    let firstA = 0;
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let i = 0; i < 4000; i++) {
      const order = weightedOrder(backends, random);
      expect(order.map((b) => b.url).sort()).toEqual(['a', 'b']);
      if (order[0]!.url === 'a') firstA++;
    }
    // Expected share 0.75; with 4000 draws the standard deviation is ~0.007, so ±0.03 is > 4σ.
    expect(Math.abs(firstA / 4000 - 0.75)).toBeLessThan(0.03);
  });

  it('HealthBook cools a failed backend down, then puts it on probation, and forgets it after a success', () => {
    const book = new HealthBook();
    book.markFailure('u', 'refused', 1000, 100);
    expect(book.state('u', 1050)).toBe('down');
    expect(book.state('u', 1100)).toBe('probation');
    book.markFailure('u', 'refused', 1100, 100);
    expect(book.state('u', 1250)).toBe('down');
    book.markSuccess('u');
    expect(book.state('u', 1250)).toBe('up');
  });

  it("HealthBook keeps a model's failure on a backend apart from the backend and from its other models", () => {
    const book = new HealthBook();
    book.markFailure('u', 'status 503 model_unavailable', 1000, 100, 'a');
    expect(book.state('u', 1050, 'a')).toBe('down');
    expect(book.state('u', 1050, 'b')).toBe('up');
    expect(book.state('u', 1050)).toBe('up');
    expect(book.state('u', 1100, 'a')).toBe('probation');
    // the backend's own failure covers each of its models
    book.markFailure('u', 'refused', 1100, 100);
    expect(book.state('u', 1150, 'b')).toBe('down');
    expect(book.state('u', 1150, 'a')).toBe('down');
    // a success for b: the backend is up again; a's own record stays
    book.markSuccess('u', 'b');
    expect(book.state('u', 1150, 'b')).toBe('up');
    expect(book.state('u', 1150, 'a')).toBe('probation');
    book.markSuccess('u', 'a');
    expect(book.state('u', 1150, 'a')).toBe('up');
  });

  it('token buckets refill linearly to capacity and tell how long to wait', () => {
    const s = refill({ level: 0, updatedAt: 0 }, 60, 30_000);
    expect(s.level).toBe(30);
    expect(refill(s, 60, 1_000_000).level).toBe(60);
    expect(msUntil({ level: 0.5, updatedAt: 0 }, 60, 1)).toBe(500);
    expect(msUntil({ level: -10, updatedAt: 0 }, 60, 1000)).toBe(70_000);
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(360_000)).toBe('6m0s');
  });

  it('caches only deterministic generations', () => {
    expect(decideCaching('chat', { temperature: 0 }, undefined, 60).mode).toBe('lookup');
    expect(decideCaching('chat', { temperature: 0.9, seed: 3 }, undefined, 60).mode).toBe('lookup');
    expect(decideCaching('chat', {}, undefined, 60).mode).toBe('bypass');
    expect(decideCaching('chat', { temperature: 0 }, 'max-age=0, no-cache', 60).mode).toBe('bypass');
    expect(decideCaching('chat', { temperature: 0 }, 'no-store', 60).mode).toBe('bypass');
    expect(decideCaching('logits', { temperature: 0 }, undefined, 60).mode).toBe('bypass');
  });

  it('canonicalJson ignores key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 1, x: 2 }], c: null } })).toBe(
      canonicalJson({ a: { c: null, d: [1, { x: 2, y: 1 }] }, b: 1 }),
    );
  });

  it('a replayed stream reassembles into the stored completion', () => {
    const text = replayAsSse(completion, true);
    const events = new SseSplitter().push(text).map(eventData);
    expect(events.at(-1)).toBe('[DONE]');
    const assembler = new StreamAssembler();
    for (const e of events.slice(0, -1)) assembler.add(JSON.parse(e!));
    expect(assembler.result()).toEqual(completion);
  });

  it('the assembler refuses an unfinished stream', () => {
    const assembler = new StreamAssembler();
    const events = new SseSplitter().push(replayAsSse(completion, true)).map(eventData);
    for (const e of events.slice(0, 2)) assembler.add(JSON.parse(e!));
    expect(assembler.result()).toBeNull();
  });
});
