/** Waiting for usage rows, which the worker writes after the response (waitUntil). */
import { env } from 'cloudflare:workers';
import { eventually } from './eventually.ts';

/** A usage row as stored. */
export interface UsageRow {
  request_id: string;
  tenant_id: string;
  key_id: string;
  model_id: string;
  endpoint: string;
  status: number;
  stream: number;
  cached: number;
  lambda: number | null;
  preset: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  aligned_prompt_tokens: number;
  aligned_completion_tokens: number;
  reference_prompt_tokens: number;
  reference_completion_tokens: number;
}

/** The usage row of `requestId` (it is written after the response, so this polls). */
export function usageRowOf(requestId: string): Promise<UsageRow> {
  return eventually(`usage row of ${requestId}`, () => env.DB.prepare('SELECT * FROM usage WHERE request_id = ?').bind(requestId).first<UsageRow>());
}
