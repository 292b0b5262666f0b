/** What the API routes need (built once by the app). */
import type { ServerConfig } from './config.ts';
import type { BackendMetrics } from './metrics.ts';
import type { ModelRegistry } from './registry.ts';
import type { UsageLedger } from './usage-ledger.ts';

/** What the generation and logits routes need. */
export interface RouteDeps {
  registry: ModelRegistry;
  config: ServerConfig;
  metrics: BackendMetrics;
  /** every generation's token count, however it ends (and the token metrics) */
  ledger: UsageLedger;
}
