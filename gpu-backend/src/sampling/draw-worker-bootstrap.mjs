// Draw-thread entry when realign runs from its TypeScript sources: registers tsx in this thread, then loads the
// draw worker. (A bundled build starts draw-worker.js directly.)
import { register } from 'tsx/esm/api';

register();
await import('./draw-worker.ts');
