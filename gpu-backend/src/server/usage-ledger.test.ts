import { describe, expect, it } from 'vitest';
import type { GenerateEvent } from '../engine/protocol.ts';
import { BackendMetrics } from './metrics.ts';
import { UsageLedger } from './usage-ledger.ts';

const tok = (n: number): GenerateEvent => ({ id: 0, text: 'x', tokens: Array.from({ length: n }, () => ({ id: 1 })) });
const end = (finish: GenerateEvent['finish'], n = 0): GenerateEvent => ({ ...tok(n), finish });

describe('usage ledger', () => {
  it('counts every token of every choice, and settles once every choice ended', () => {
    const ledger = new UsageLedger(null);
    const t = ledger.open('dispatch-1', { id: 'm', mode: 'inra' }, 0.5, [4, 4], 4);
    t.event(0, tok(1));
    t.event(1, tok(1));
    t.event(0, tok(2));
    expect(ledger.get('dispatch-1')).toMatchObject({ state: 'running', usage: { completion_tokens: 4 } });
    t.event(0, end('length', 1));
    expect(ledger.get('dispatch-1')!.state).toBe('running');
    // a cancelled choice's final event carries no tokens; what it generated before still counts
    t.event(1, end('cancelled'));
    const r = ledger.get('dispatch-1')!;
    expect(r.state).toBe('cancelled');
    expect(r.ended_at).not.toBeNull();
    // λ = 0.5 runs both branches: each counts both choices' prompts and tokens
    expect(r.usage).toEqual({
      prompt_tokens: 4,
      completion_tokens: 5,
      total_tokens: 9,
      realign: {
        lambda: 0.5,
        branches: { aligned: { prompt_tokens: 8, completion_tokens: 5 }, reference: { prompt_tokens: 8, completion_tokens: 5 } },
      },
    });
    // events after the end change nothing
    t.event(0, tok(5));
    expect(ledger.get('dispatch-1')!.usage.completion_tokens).toBe(5);
  });

  it('λ = 1 counts the aligned branch only; a broken choice fails the request; the metrics see every ending', async () => {
    const metrics = new BackendMetrics();
    const ledger = new UsageLedger(metrics);
    const t = ledger.open('dispatch-2', { id: 'm', mode: 'inra' }, 1, [3], 3);
    t.event(0, tok(1));
    t.event(0, tok(1));
    t.broken(0);
    const r = ledger.get('dispatch-2')!;
    expect(r.state).toBe('failed');
    expect(r.usage.realign!.branches).toEqual({
      aligned: { prompt_tokens: 3, completion_tokens: 2 },
      reference: { prompt_tokens: 0, completion_tokens: 0 },
    });
    expect(await metrics.render()).toMatch(/realign_completion_tokens_total\{branch="aligned",model="m"\} 2/);
    const ok = ledger.open('dispatch-3', { id: 'm', mode: 'single' }, 1, [3], 3);
    ok.event(0, end('stop', 1));
    expect(ledger.get('dispatch-3')).toMatchObject({ state: 'completed', usage: { completion_tokens: 1 } });
  });

  it('forgets ended entries after the TTL and keeps at most maxEntries', () => {
    let now = 0;
    const ledger = new UsageLedger(null, { ttlMs: 1000, maxEntries: 300, now: () => now });
    for (let i = 0; i < 1000; i++) ledger.open(`dispatch-${i}`, { id: 'm', mode: 'single' }, 1, [1], 1).event(0, end('stop', 1));
    expect(ledger.size).toBeLessThanOrEqual(300);
    expect(ledger.get('dispatch-999')).not.toBeNull();
    now = 5000;
    for (let i = 0; i < 256; i++) ledger.open(`later-${i}`, { id: 'm', mode: 'single' }, 1, [1], 1);
    expect(ledger.get('dispatch-999')).toBeNull();
    // running entries are never dropped by age
    expect(ledger.get('later-0')!.state).toBe('running');
  });
});
