/** The credential of `Authorization: Bearer <token>` — the one parser of every Diamond API. */
export function bearerToken(header: string | undefined): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? null;
}

/** The `WWW-Authenticate` challenge of a 401: a missing credential, or one that is not valid. */
export function bearerChallenge(realm: string, presented: boolean): Record<string, string> {
  return { 'WWW-Authenticate': presented ? `Bearer realm="${realm}", error="invalid_token"` : `Bearer realm="${realm}"` };
}
