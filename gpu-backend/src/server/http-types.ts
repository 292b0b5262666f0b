import type { Logger } from 'pino';

/** Per-request values the middleware sets. */
export interface BackendEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** the request body as text (read once, size-limited, valid UTF-8) */
    body: string;
    /** how the caller authenticated */
    auth: 'hmac' | 'bearer' | 'none';
  };
}
