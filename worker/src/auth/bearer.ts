/** Reads a bearer token from `Authorization: Bearer <token>`. */

/** The token, or null when the header is missing or not a bearer credential. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}
