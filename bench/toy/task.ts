/**
 * The toy task: adding two 3-digit numbers, answered through a worked trace. Every answer first adds digit by
 * digit (the computation it needs), then writes zero or more redundant checks, then the answer:
 *
 *   347+285  →  "7+5=12 4+8+1=13 3+2+1=6 sum 632. check 632-285=347. check 632-347=285. answer 632"
 *
 * The reference model is trained on answers with 2–6 checks (it always thinks long); the InRa adapter on answers
 * with 0–1 checks. The checks are what λ trades away: they cost tokens and never change the answer.
 */
import { NormalStream } from '../../gpu-backend/src/random/normal.ts';

/** One problem. */
export interface Problem {
  a: number;
  b: number;
}

/** The prompt of a problem (the user message). */
export function promptOf(p: Problem): string {
  return `${p.a}+${p.b}`;
}

/** The digit-by-digit addition, least significant digit first, carries written into the next step. */
export function digitSteps(p: Problem): string {
  const da = String(p.a).split('').reverse().map(Number);
  const db = String(p.b).split('').reverse().map(Number);
  let carry = 0;
  const steps: string[] = [];
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const terms = [da[i] ?? 0, db[i] ?? 0, ...(carry ? [carry] : [])];
    const s = terms.reduce((x, y) => x + y, 0);
    steps.push(`${terms.join('+')}=${s}`);
    carry = s >= 10 ? 1 : 0;
  }
  return steps.join(' ');
}

/** A full answer with `checks` redundant checks. */
export function answerOf(p: Problem, checks: number): string {
  const sum = p.a + p.b;
  const parts = [`${digitSteps(p)} sum ${sum}.`];
  for (let c = 0; c < checks; c++) parts.push(c % 2 === 0 ? `check ${sum}-${p.b}=${p.a}.` : `check ${sum}-${p.a}=${p.b}.`);
  parts.push(`answer ${sum}`);
  return parts.join(' ');
}

/** The number after the last "answer " of a completion, or null. */
export function parseAnswer(text: string): number | null {
  const m = /answer (\d+)\s*$/.exec(text.trim());
  return m ? Number(m[1]) : null;
}

/** A seeded problem stream; `exclude` keeps held-out problems out of training data. */
export function problems(seed: number, count: number, exclude: ReadonlySet<string> = new Set()): Problem[] {
  const rng = new NormalStream(seed);
  const out: Problem[] = [];
  while (out.length < count) {
    const p = { a: 100 + Math.floor(rng.uniform() * 900), b: 100 + Math.floor(rng.uniform() * 900) };
    if (!exclude.has(promptOf(p))) out.push(p);
  }
  return out;
}

/** Prompt/response records with a check count drawn uniformly from [minChecks, maxChecks]. */
export function records(
  ps: readonly Problem[],
  seed: number,
  minChecks: number,
  maxChecks: number,
): { prompt: string; response: string }[] {
  const rng = new NormalStream(seed ^ 0x5bd1e995);
  return ps.map((p) => ({
    prompt: promptOf(p),
    response: answerOf(p, minChecks + Math.floor(rng.uniform() * (maxChecks - minChecks + 1))),
  }));
}
