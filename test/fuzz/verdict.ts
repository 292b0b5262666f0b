/**
 * What every fuzzed response must satisfy, and the tally a fuzz run prints: never a 5xx for bad input, every 4xx
 * carries exactly OpenAI's error JSON with a type that fits its status, successful JSON parses and successful
 * streams end with `[DONE]`, every response has a request id, and every request ends (no hang, no lost request).
 */
import { eventData, SseSplitter } from '../../shared/src/sse.ts';
import type { FuzzCase } from './requests.ts';

/** The error `type` each 4xx status must carry. */
const TYPE_OF_STATUS: Record<number, string[]> = {
  400: ['invalid_request_error'],
  401: ['authentication_error'],
  403: ['permission_error'],
  404: ['not_found_error'],
  405: ['invalid_request_error'],
  413: ['invalid_request_error'],
  429: ['rate_limit_error'],
};

/** Counts of one fuzz run. */
export interface Tally {
  tried: number;
  byStatus: Record<string, number>;
  /** requests that got no complete response (network error, hang past the deadline) */
  lost: number;
  violations: { case: FuzzCase; index: number; problem: string }[];
  /** the slowest requests (ms), to spot near-hangs */
  slowest: { ms: number; index: number; what: string }[];
}

/** An empty tally. */
export function newTally(): Tally {
  return { tried: 0, byStatus: {}, lost: 0, violations: [], slowest: [] };
}

/** `work`, or a rejection saying `what` did not finish after `ms`. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not finished after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Problems with an error body (empty when it is exactly OpenAI's shape with a fitting type). */
export function errorBodyProblems(status: number, contentType: string, text: string): string[] {
  if (!contentType.startsWith('application/json')) return [`content-type ${JSON.stringify(contentType)} on a ${status}`];
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [`a ${status} whose body is not JSON: ${text.slice(0, 120)}`];
  }
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  if (typeof body !== 'object' || body === null || Object.keys(body).join() !== 'error' || typeof e !== 'object' || e === null)
    return [`not {error: …}: ${text.slice(0, 200)}`];
  const problems: string[] = [];
  if (Object.keys(e).sort().join() !== 'code,message,param,type') problems.push(`error keys ${Object.keys(e).sort().join()}`);
  if (typeof e.message !== 'string' || e.message.length < 10) problems.push(`message ${JSON.stringify(e.message)}`);
  if (!(e.param === null || typeof e.param === 'string')) problems.push('param is neither null nor a string');
  if (!(e.code === null || typeof e.code === 'string')) problems.push('code is neither null nor a string');
  const allowed = TYPE_OF_STATUS[status];
  if (allowed && !allowed.includes(e.type as string)) problems.push(`type ${JSON.stringify(e.type)} on a ${status}`);
  return problems;
}

/** Problems with a successful body. */
function successProblems(method: string, contentType: string, text: string): string[] {
  if (method === 'HEAD' || text === '') return [];
  if (contentType.startsWith('application/json')) {
    try {
      JSON.parse(text);
      return [];
    } catch {
      return [`2xx JSON that does not parse: ${text.slice(0, 120)}`];
    }
  }
  if (contentType.startsWith('text/event-stream')) {
    const splitter = new SseSplitter();
    const data = splitter
      .push(text)
      .map(eventData)
      .filter((d): d is string => d !== null);
    if (splitter.rest().trim() !== '') return ['stream ends inside an event'];
    if (data.at(-1) !== '[DONE]') return [`stream does not end with [DONE]: ${data.at(-1)?.slice(0, 200)}`];
    const broken = data.slice(0, -1).find((d) => {
      try {
        return 'error' in (JSON.parse(d) as object);
      } catch {
        return true;
      }
    });
    return broken ? [`stream carries a bad event: ${broken.slice(0, 200)}`] : [];
  }
  return [];
}

/**
 * Sends one case with `send`, reads the answer within `deadlineMs`, and records status and problems in `tally`.
 * `extraCheck` may add side-specific problems (e.g. a missing request id).
 */
export async function judge(
  tally: Tally,
  index: number,
  c: FuzzCase,
  send: () => Promise<Response>,
  deadlineMs: number,
  extraCheck?: (res: Response) => string[],
): Promise<void> {
  tally.tried++;
  const started = Date.now();
  let res: Response;
  let text: string;
  try {
    res = await within(send(), deadlineMs, 'response');
    text = await within(res.text(), deadlineMs, 'body');
  } catch (e) {
    tally.lost++;
    tally.violations.push({ case: c, index, problem: `lost: ${e instanceof Error ? e.message : String(e)}` });
    return;
  }
  tally.byStatus[res.status] = (tally.byStatus[res.status] ?? 0) + 1;
  const ms = Date.now() - started;
  if (tally.slowest.length < 5 || ms > tally.slowest.at(-1)!.ms) {
    tally.slowest.push({ ms, index, what: `${c.method} ${c.path.slice(0, 80)} → ${res.status} (${c.note})` });
    tally.slowest.sort((a, b) => b.ms - a.ms);
    tally.slowest.length = Math.min(tally.slowest.length, 5);
  }
  const contentType = res.headers.get('content-type') ?? '';
  const problems: string[] = [];
  const bodyless = c.method === 'HEAD' || res.status === 204 || res.status === 304;
  if (res.status >= 500) problems.push(`${res.status} for fuzzed input: ${text.slice(0, 300)}`);
  else if (res.status >= 400 && !bodyless) problems.push(...errorBodyProblems(res.status, contentType, text));
  else if (res.status >= 200 && res.status < 300) problems.push(...successProblems(c.method, contentType, text));
  problems.push(...(extraCheck?.(res) ?? []));
  for (const problem of problems) tally.violations.push({ case: c, index, problem });
}

/** Runs `cases` with at most `concurrency` in flight, calling `one` for each (in index order of start). */
export async function runPool<T>(cases: T[], concurrency: number, one: (c: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, cases.length) }, async () => {
    while (next < cases.length) {
      const i = next++;
      await one(cases[i]!, i);
    }
  });
  await Promise.all(workers);
}

/** One line for the test log: requests tried, responses by status, lost, violations. */
export function summary(name: string, seed: number, t: Tally): string {
  const statuses = Object.entries(t.byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  const slow = t.slowest.length > 0 ? ` slowest=${t.slowest[0]!.ms} ms` : '';
  return `[fuzz ${name}] seed=${seed} tried=${t.tried} by status {${statuses}} lost=${t.lost} violations=${t.violations.length}${slow}`;
}

/** Violations grouped by the start of their problem text, then the first few in full (bodies shortened). */
export function describeViolations(t: Tally, max = 5): string {
  const kinds = new Map<string, number>();
  for (const v of t.violations) kinds.set(v.problem.slice(0, 50), (kinds.get(v.problem.slice(0, 50)) ?? 0) + 1);
  const head = [...kinds].map(([k, n]) => `${n}× ${k}`).join('\n');
  return (
    head +
    '\n' +
    t.violations
      .slice(0, max)
      .map((v) => {
        const body =
          v.case.body === null
            ? 'null'
            : typeof v.case.body === 'string'
              ? JSON.stringify(v.case.body.slice(0, 300))
              : `bytes[${v.case.body.length}]`;
        return `#${v.index} ${v.case.method} ${v.case.path.slice(0, 200)} auth=${v.case.auth} headers=${JSON.stringify(v.case.headers).slice(0, 200)} (${v.case.note}) body=${body}\n   → ${v.problem}`;
      })
      .join('\n')
  );
}
