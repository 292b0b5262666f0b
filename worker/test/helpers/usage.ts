/** Waiting for usage rows, which the worker writes after the response (waitUntil). */
import { env } from 'cloudflare:workers';
import type { UsageRecord } from '../../src/db/usage.ts';
import { eventually } from './eventually.ts';

/** A usage row as stored: D1 keeps the booleans `stream` and `cached` as 0 or 1. */
export type UsageRow = Omit<UsageRecord, 'stream' | 'cached'> & { stream: number; cached: number };

/** The completed usage row of `requestId` (completed after the response, so this polls; status 0 is in flight). */
export function usageRowOf(requestId: string): Promise<UsageRow> {
  return eventually(`usage row of ${requestId}`, () =>
    env.DB.prepare('SELECT * FROM usage WHERE request_id = ? AND status != 0').bind(requestId).first<UsageRow>(),
  );
}
