import { describe, expect, it } from 'vitest';
import type { GenerateEvent } from '../engine/protocol.ts';
import { UsageLedger } from './usage-ledger.ts';

const tok = (n: number): GenerateEvent => ({ id: 0, text: 'x', tokens: Array.from({ length: n }, () => ({ id: 1 })) });

describe('usage ledger with a mix of named adapters', () => {
  it('counts each adapter with λ ≠ 0 and the reference; a mix whose λ sum to 0 still counts its adapters', () => {
    const ledger = new UsageLedger(null);
    // Σλ = 0: a single-λ ledger would have said "reference only"
    const t = ledger.open('d-mix', { id: 'm', mode: 'inra' }, 0, [3], 3, { concise: 0.5, safe: -0.5, style: 0 });
    t.event(0, { ...tok(2), finish: 'stop' });
    const r = ledger.get('d-mix')!;
    expect(r.usage.realign).toEqual({
      lambda: 0,
      branches: { aligned: { prompt_tokens: 3, completion_tokens: 2 }, reference: { prompt_tokens: 3, completion_tokens: 2 } },
      mix: { concise: 0.5, safe: -0.5, style: 0 },
      adapters: { concise: { prompt_tokens: 3, completion_tokens: 2 }, safe: { prompt_tokens: 3, completion_tokens: 2 } },
    });
    // one adapter at λ = 1 runs no reference branch
    const one = ledger.open('d-one', { id: 'm', mode: 'inra' }, 1, [4], 4, { safe: 1 });
    one.event(0, { ...tok(1), finish: 'stop' });
    expect(ledger.get('d-one')!.usage.realign!.branches.reference).toEqual({ prompt_tokens: 0, completion_tokens: 0 });
  });
});
