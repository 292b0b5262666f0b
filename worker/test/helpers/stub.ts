/** Access to the stub backend from inside workerd: backend URLs by behaviour, its request log, and stream gates. */
import { inject } from 'vitest';

/** The stub's base URL. */
export function stubUrl(): string {
  return inject('stubBackend').url;
}

/** A loopback URL that refuses connections. */
export function refusedBackendUrl(): string {
  return inject('stubBackend').refusedUrl;
}

/** A backend URL with a behaviour (ok, fail500, fail503, unavailable, gated, die, stall, garbage, slow, …: stub-server.ts) and a tag for counters. */
export function stubBackend(behaviour: string, tag: string): string {
  return `${stubUrl()}/${behaviour}/${tag}`;
}

/** One request as the stub recorded it. */
export interface StubRequest {
  behaviour: string;
  method: string;
  path: string;
  body: Record<string, unknown>;
}

/** The requests the stub received under `tag`. */
export async function stubRequests(tag: string): Promise<StubRequest[]> {
  const res = await fetch(`${stubUrl()}/__stats/${tag}`);
  return ((await res.json()) as { requests: StubRequest[] }).requests;
}

/** How many of the stub's streams under `tag` were closed by the worker before they finished. */
export async function stubAborted(tag: string): Promise<number> {
  const res = await fetch(`${stubUrl()}/__stats/${tag}`);
  return ((await res.json()) as { aborted: number }).aborted;
}

/** Lets a `gated` stream under `tag` send the rest of its events. */
export async function releaseStub(tag: string): Promise<void> {
  await fetch(`${stubUrl()}/__release/${tag}`, { method: 'POST' });
}

/** A tag unique to this test run. */
export function uniqueTag(name: string): string {
  return `${name}-${crypto.randomUUID().slice(0, 8)}`;
}
