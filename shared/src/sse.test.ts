import { describe, expect, it } from 'vitest';
import { eventData, sseEvent, SseSplitter, SSE_DONE } from './sse.ts';

describe('SseSplitter', () => {
  it('returns events only once they are complete, whatever the chunking', () => {
    const text = sseEvent({ a: 1 }) + ': ping\n\n' + 'data: {"b":\ndata: 2}\r\n\r\n' + SSE_DONE;
    for (const size of [1, 2, 5, 7, text.length]) {
      const s = new SseSplitter();
      const events: string[] = [];
      for (let i = 0; i < text.length; i += size) events.push(...s.push(text.slice(i, i + size)));
      expect(events.map(eventData)).toEqual(['{"a":1}', null, '{"b":\n2}', '[DONE]']);
      expect(s.rest()).toBe('');
    }
  });

  it('keeps an unfinished tail', () => {
    const s = new SseSplitter();
    expect(s.push('data: {"a"')).toEqual([]);
    expect(s.rest()).toBe('data: {"a"');
  });
});
