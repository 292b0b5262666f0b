import { describe, expect, it } from 'vitest';
import { answerOf, digitSteps, parseAnswer, problems, records } from '../../../bench/toy/task.ts';

describe('toy task (bench/toy)', () => {
  it('the digit trace adds correctly, carries included, and the answer parses back', () => {
    expect(digitSteps({ a: 347, b: 285 })).toBe('7+5=12 4+8+1=13 3+2+1=6');
    expect(answerOf({ a: 999, b: 101 }, 2)).toBe(
      '9+1=10 9+0+1=10 9+1+1=11 sum 1100. check 1100-101=999. check 1100-999=101. answer 1100',
    );
    for (const p of problems(3, 500)) {
      const steps = digitSteps(p)
        .split(' ')
        .map((s) => Number(s.split('=')[1]));
      // each step's last digit is the sum's digit; the last step holds the leading digits
      const digits = steps
        .map((s, i) => (i === steps.length - 1 ? String(s) : String(s % 10)))
        .reverse()
        .join('');
      expect(Number(digits)).toBe(p.a + p.b);
      expect(parseAnswer(answerOf(p, 3))).toBe(p.a + p.b);
    }
    expect(parseAnswer('sum 12. check')).toBeNull();
  });

  it('records draw check counts in the asked range, and held-out problems stay out', () => {
    const held = new Set(problems(9, 50).map((p) => `${p.a}+${p.b}`));
    const ps = problems(4, 400, held);
    expect(ps.some((p) => held.has(`${p.a}+${p.b}`))).toBe(false);
    const counts = records(ps, 1, 2, 6).map((r) => r.response.split(' check ').length - 1);
    expect(Math.min(...counts)).toBe(2);
    expect(Math.max(...counts)).toBe(6);
  });
});
