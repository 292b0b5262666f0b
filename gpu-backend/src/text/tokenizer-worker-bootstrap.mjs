// Tokenizer-thread entry when realign runs from its TypeScript sources: registers tsx in this thread, then loads
// the tokenizer worker. (A bundled build starts tokenizer-worker.js directly.)
import { register } from 'tsx/esm/api';

register();
await import('./tokenizer-worker.ts');
