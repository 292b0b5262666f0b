/** Values that worker/test/stub-backend/node/global-setup.ts provides to the tests (declared there too, for the Node side). */
import 'vitest';

declare module 'vitest' {
  interface ProvidedContext {
    stubBackend: { url: string; refusedUrl: string };
  }
}
