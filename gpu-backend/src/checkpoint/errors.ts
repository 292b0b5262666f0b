/** A checkpoint that cannot be read or written: the message names the file and the tensor or key at fault. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}
