// Draw-thread entry of gpu-check.ts when it runs from the TypeScript sources (dry runs): registers tsx in this thread,
// then loads gpu-check.ts, which sees it is not the main thread. (The bundle starts gpu-check.js directly.)
import { register } from 'tsx/esm/api';

register();
await import('./gpu-check.ts');
