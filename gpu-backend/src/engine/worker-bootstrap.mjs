// Worker-thread entry when realign runs from its TypeScript sources: registers tsx in this thread, then loads the
// engine worker. (A bundled build starts worker-main.js directly.)
import { register } from 'tsx/esm/api';

register();
await import('./worker-main.ts');
