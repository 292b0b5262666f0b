/**
 * The one prompt check of the backend, with one set of error codes: the server's request preparation
 * (server/prepare/prompt.ts) and the engine's admission (scheduler.ts) both ask it, so a prompt that is empty or too
 * long gets the same code and message wherever it is caught. The code is OpenAI's `context_length_exceeded`.
 */

/** Why a prompt cannot run: it has no tokens, or more than the limit. */
export interface PromptProblem {
  code: 'empty_prompt' | 'context_length_exceeded';
  message: string;
}

/**
 * The problem of a prompt of `length` tokens where at most `limit` are accepted (the server's limit, and one less
 * than the model's context), or null when it fits; `what` names the prompt in the message (`` `messages` ``).
 */
export function promptProblem(length: number, limit: number, what = 'the prompt'): PromptProblem | null {
  if (length === 0) return { code: 'empty_prompt', message: `${what} encodes to no tokens; send some text` };
  if (length > limit)
    return {
      code: 'context_length_exceeded',
      message: `${what} has ${length} tokens; this server accepts at most ${limit} prompt tokens for this model`,
    };
  return null;
}
