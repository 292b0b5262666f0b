/** Waiting for usage rows, which the worker writes after the response (waitUntil). */
import { env } from 'cloudflare:workers';

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

/** The usage row of `requestId`, polling for up to `timeoutMs` (it is written after the response). */
export async function usageRowOf(requestId: string, timeoutMs = 3000): Promise<UsageRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await env.DB.prepare('SELECT * FROM usage WHERE request_id = ?').bind(requestId).first<UsageRow>();
    if (row !== null) return row;
    if (Date.now() > deadline) throw new Error(`no usage row for ${requestId} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
